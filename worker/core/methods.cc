#include "worker/core/methods.h"

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
