#include "worker/core/methods.h"

#include <algorithm>
#include <cmath>

namespace mixcal::core {

at::Tensor CrossEntropy(const at::Tensor& logits, const at::Tensor& labels) {
  return at::nll_loss(at::log_softmax(logits, 1), labels);
}

at::Tensor MixupLoss(const at::Tensor& logits, const at::Tensor& y_a,
                     const at::Tensor& y_b, double lambda) {
  // One log_softmax serves both targets.
  at::Tensor logp = at::log_softmax(logits, 1);
  return lambda * at::nll_loss(logp, y_a) +
         (1.0 - lambda) * at::nll_loss(logp, y_b);
}

at::Tensor LabelSmoothingLoss(const at::Tensor& logits,
                              const at::Tensor& labels, double epsilon,
                              calib::SmoothingMode mode) {
  const int64_t k = logits.size(1);
  at::Tensor logp = at::log_softmax(logits, 1);
  at::Tensor nll = at::nll_loss(logp, labels);  // mean of -logp[y]
  at::Tensor sum_all = -logp.sum(1).mean();     // mean of -sum_k logp_k
  if (mode == calib::SmoothingMode::kUniform) {
    // target = (1-eps) y + eps/K: (1-eps) CE(y) + (eps/K) sum_k -logp_k.
    return (1.0 - epsilon) * nll + (epsilon / k) * sum_all;
  }
  // target: 1-eps on y, eps/(K-1) on each other class.
  const double off = epsilon / (k - 1);
  return (1.0 - epsilon) * nll + off * (sum_all - nll);
}

at::Tensor ErlLoss(const at::Tensor& logits, const at::Tensor& labels,
                   double beta) {
  at::Tensor logp = at::log_softmax(logits, 1);
  at::Tensor entropy = -(logp.exp() * logp).sum(1).mean();
  return at::nll_loss(logp, labels) - beta * entropy;
}

at::Tensor FocalLoss(const at::Tensor& logits, const at::Tensor& labels,
                     double gamma, calib::FocalSchedule schedule) {
  at::Tensor logp_y =
      at::log_softmax(logits, 1).gather(1, labels.view({-1, 1})).squeeze(1);
  at::Tensor p_y = logp_y.exp();
  at::Tensor g = at::full_like(p_y, gamma);
  if (schedule == calib::FocalSchedule::kFlsd53)
    g = at::where(p_y.detach() < 0.2, at::full_like(p_y, 5.0), g);
  return (-(1 - p_y).pow(g) * logp_y).mean();
}

at::Tensor MmceLoss(const at::Tensor& logits, const at::Tensor& labels,
                    double lambda) {
  at::Tensor logp = at::log_softmax(logits, 1);
  auto [r, pred] = logp.exp().max(1);
  at::Tensor c = pred.eq(labels).to(r.scalar_type());
  at::Tensor d = c - r;
  at::Tensor k = at::exp(-(r.unsqueeze(1) - r.unsqueeze(0)).abs() / 0.4);
  const double b = static_cast<double>(logits.size(0));
  at::Tensor mmce2 = (d.unsqueeze(1) * d.unsqueeze(0) * k).sum() / (b * b);
  return at::nll_loss(logp, labels) +
         lambda * at::sqrt(at::clamp_min(mmce2, 1e-12));
}

at::Tensor CutMixInputs(const at::Tensor& x, const at::Tensor& perm,
                        double lambda, double cx, double cy,
                        double* area_kept) {
  const int64_t h = x.size(2), w = x.size(3);
  const double cut = std::sqrt(1.0 - lambda);
  const int64_t cut_w = static_cast<int64_t>(w * cut),
                cut_h = static_cast<int64_t>(h * cut);
  const int64_t mx = static_cast<int64_t>(cx * w),
                my = static_cast<int64_t>(cy * h);
  const int64_t x0 = std::clamp<int64_t>(mx - cut_w / 2, 0, w),
                x1 = std::clamp<int64_t>(mx + cut_w / 2, 0, w),
                y0 = std::clamp<int64_t>(my - cut_h / 2, 0, h),
                y1 = std::clamp<int64_t>(my + cut_h / 2, 0, h);
  at::Tensor out = x.clone();
  if (x1 > x0 && y1 > y0) {
    out.slice(2, y0, y1).slice(3, x0, x1).copy_(
        x.index_select(0, perm).slice(2, y0, y1).slice(3, x0, x1));
  }
  *area_kept = 1.0 - static_cast<double>((x1 - x0) * (y1 - y0)) /
                         static_cast<double>(w * h);
  return out;
}

at::Tensor MixInputs(const at::Tensor& x, const at::Tensor& perm,
                     double lambda) {
  return lambda * x + (1.0 - lambda) * x.index_select(0, perm);
}

at::Tensor FeatureMixupTarget(const at::Tensor& y, const at::Tensor& perm,
                              double lambda, calib::LabelPolicy policy) {
  if (policy == calib::LabelPolicy::kFirst || lambda >= 0.5) return y;
  return y.index_select(0, perm);
}

int64_t CountCorrect(const at::Tensor& logits, const at::Tensor& labels) {
  return logits.argmax(1).eq(labels).sum().item<int64_t>();
}

}  // namespace mixcal::core
