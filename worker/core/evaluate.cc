#include "worker/core/evaluate.h"

#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "calib/metrics.h"

namespace mixcal::core {
namespace {

double Nll(const at::Tensor& logits64, const at::Tensor& labels, double t) {
  return at::nll_loss(at::log_softmax(logits64 / t, 1), labels).item<double>();
}

}  // namespace

at::Tensor TopConfidence(const at::Tensor& logits, double temperature) {
  at::Tensor z = logits.to(at::kCPU, at::kDouble) / temperature;
  return std::get<0>(at::softmax(z, 1).max(1)).to(at::kFloat).contiguous();
}

SplitMetrics LabelledMetrics(const std::string& split, const at::Tensor& logits,
                             const at::Tensor& labels, int num_bins,
                             double temperature) {
  at::Tensor z = logits.to(at::kCPU, at::kDouble) / temperature;
  at::Tensor y = labels.to(at::kCPU, at::kLong);
  const int64_t n = z.size(0), k = z.size(1);
  at::Tensor logp = at::log_softmax(z, 1);
  at::Tensor p = logp.exp();
  auto [conf64, pred] = p.max(1);
  at::Tensor correct = pred.eq(y);

  SplitMetrics m;
  m.split = split;
  m.count = n;
  if (n == 0) return m;
  m.accuracy = correct.to(at::kDouble).mean().item<double>();
  m.nll = at::nll_loss(logp, y).item<double>();
  at::Tensor onehot =
      at::zeros({n, k}, z.options()).scatter_(1, y.view({n, 1}), 1.0);
  m.brier = (p - onehot).pow(2).sum(1).mean().item<double>();
  m.mean_confidence = conf64.mean().item<double>();
  m.mean_entropy = (-(p * logp).sum(1)).mean().item<double>();

  at::Tensor conf = conf64.to(at::kFloat).contiguous();
  at::Tensor corr = correct.to(at::kByte).contiguous();
  absl::Span<const float> cs(conf.data_ptr<float>(), n);
  absl::Span<const uint8_t> ks(corr.data_ptr<uint8_t>(), n);
  m.bins = calib::BinConfidences(cs, ks, num_bins);
  calib::Calibration c = CalibrationFromBins(m.bins);
  m.ece = c.ece;
  m.mce = c.mce;
  m.oe = c.oe;
  m.adaptive_ece = calib::AdaptiveEce(cs, ks, num_bins);
  if (temperature != 1.0) m.temperature = temperature;
  // Beyond top-label ECE, torch-free from the probabilities.
  at::Tensor pf = p.to(at::kFloat).contiguous();
  at::Tensor yi = y.to(at::kInt).contiguous();
  m.classwise_ece = calib::ClasswiseEce(
      absl::Span<const float>(pf.data_ptr<float>(), static_cast<size_t>(n * k)),
      absl::Span<const int32_t>(yi.data_ptr<int32_t>(), static_cast<size_t>(n)),
      static_cast<int>(k), num_bins);
  m.l2_ce_debiased = calib::DebiasedL2CalibrationError(m.bins);
  m.rmsce = calib::Rmsce(m.bins);
  const calib::SmoothEce smooth = calib::SmoothCalibrationError(cs, ks);
  m.smece = smooth.value;
  const calib::BrierDecomposition d = calib::TopLabelBrierDecomposition(m.bins);
  m.brier_reliability = d.reliability;
  m.brier_resolution = d.resolution;
  m.brier_uncertainty = d.uncertainty;
  m.aurc = calib::Aurc(cs, ks);
  m.mmce = calib::Mmce(cs, ks);
  m.tace = calib::ThresholdedAdaptiveEce(
      absl::Span<const float>(pf.data_ptr<float>(), static_cast<size_t>(n * k)),
      absl::Span<const int32_t>(yi.data_ptr<int32_t>(), static_cast<size_t>(n)),
      static_cast<int>(k), num_bins);
  const calib::Interval ci = calib::BootstrapEceInterval(cs, ks, num_bins);
  m.ece_low = ci.low;
  m.ece_high = ci.high;
  m.estimators = absl::StrCat("bins=", num_bins,
                              " equal-width (ece, mce, oe, classwise_ece, "
                              "rmsce, l2_ce_debiased, brier decomposition); "
                              "adaptive_ece ",
                              num_bins,
                              " equal-mass; tace ", num_bins,
                              " equal-mass per class above 0.01"
                              "; ece interval: 200 bootstrap "
                              "resamples, 95% percentile; mmce: laplacian "
                              "kernel 0.4; smece: reflected gaussian kernel, "
                              "width ", absl::StrFormat("%.4g", smooth.width));
  return m;
}

SplitMetrics UnlabelledMetrics(const std::string& split,
                               const at::Tensor& logits,
                               const at::Tensor& in_distribution_confidence) {
  at::Tensor z = logits.to(at::kCPU, at::kDouble);
  at::Tensor logp = at::log_softmax(z, 1);
  at::Tensor p = logp.exp();
  at::Tensor conf = std::get<0>(p.max(1));
  SplitMetrics m;
  m.split = split;
  m.has_labels = false;
  m.count = z.size(0);
  if (m.count == 0) return m;
  m.mean_confidence = conf.mean().item<double>();
  m.mean_entropy = (-(p * logp).sum(1)).mean().item<double>();
  at::Tensor neg = conf.to(at::kFloat).contiguous();
  at::Tensor pos =
      in_distribution_confidence.to(at::kCPU, at::kFloat).contiguous();
  const absl::Span<const float> ps(pos.data_ptr<float>(), pos.numel());
  const absl::Span<const float> ns(neg.data_ptr<float>(), neg.numel());
  m.auroc = calib::Auroc(ps, ns);
  m.fpr95 = calib::FprAtTpr(ps, ns, 0.95);
  m.aupr = calib::AveragePrecision(ps, ns);
  m.estimators = "test split positive; fpr at tpr 0.95; aupr as average precision";
  return m;
}

double FitTemperature(const at::Tensor& logits, const at::Tensor& labels) {
  at::Tensor z = logits.to(at::kCPU, at::kDouble);
  at::Tensor y = labels.to(at::kCPU, at::kLong);
  if (z.size(0) == 0) return 1.0;
  // Golden-section search on u = log T.
  const double kInvPhi = (std::sqrt(5.0) - 1) / 2;
  double lo = std::log(0.01), hi = std::log(100.0);
  double a = hi - kInvPhi * (hi - lo), b = lo + kInvPhi * (hi - lo);
  double fa = Nll(z, y, std::exp(a)), fb = Nll(z, y, std::exp(b));
  while (hi - lo > 1e-7) {
    if (fa < fb) {
      hi = b;
      b = a;
      fb = fa;
      a = hi - kInvPhi * (hi - lo);
      fa = Nll(z, y, std::exp(a));
    } else {
      lo = a;
      a = b;
      fa = fb;
      b = lo + kInvPhi * (hi - lo);
      fb = Nll(z, y, std::exp(b));
    }
  }
  return std::exp((lo + hi) / 2);
}

}  // namespace mixcal::core
