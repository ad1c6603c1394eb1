#include "worker/core/evaluate.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "calib/metric_table.h"
#include "calib/metrics.h"

namespace mixcal::core {
namespace {

// The NLL of softmax(z / t) for logits z [N, K] and labels in [0, K), its
// buffers kept between calls (the temperature search evaluates it about
// forty times).
class TemperatureNll {
 public:
  TemperatureNll(const at::Tensor& logits, const at::Tensor& labels)
      : z_(logits.to(at::kCPU, at::kDouble).contiguous()),
        y_(labels.to(at::kCPU, at::kLong).contiguous()),
        n_(z_.size(0)), k_(z_.size(1)) {
    const int64_t* y = y_.data_ptr<int64_t>();
    for (int64_t i = 0; i < n_; ++i) {
      TORCH_CHECK(y[i] >= 0 && y[i] < k_, "label ", y[i], " of example ", i,
                  " is outside [0, ", k_, ")");
    }
  }

  double operator()(double t) {
    const double* z = z_.data_ptr<double>();
    const int64_t* y = y_.data_ptr<int64_t>();
    ScaledSoftmax(z, n_, k_, 1 / t, &e_, &top_, &sum_);
    double nll = 0;
    for (int64_t i = 0; i < n_; ++i) {
      const double* zi = z + i * k_;
      nll += std::log(sum_[i]) - (zi[y[i]] - zi[top_[i]]) / t;
    }
    return nll / static_cast<double>(n_);
  }

 private:
  const at::Tensor z_, y_;
  const int64_t n_, k_;
  std::vector<double> e_, sum_;
  std::vector<int64_t> top_;
};

}  // namespace

void ScaledSoftmax(const double* z, int64_t n, int64_t k, double scale,
                   std::vector<double>* e, std::vector<int64_t>* top,
                   std::vector<double>* sum) {
  e->resize(static_cast<size_t>(n * k));
  top->resize(n);
  sum->resize(n);
  double* ep = e->data();
  for (int64_t i = 0; i < n; ++i) {
    const double* row = z + i * k;
    int64_t t = 0;
    for (int64_t j = 1; j < k; ++j) t = row[j] > row[t] ? j : t;
    (*top)[i] = t;
    const double largest = row[t];
    double* ei = ep + i * k;
    for (int64_t j = 0; j < k; ++j) ei[j] = (row[j] - largest) * scale;
  }
  at::from_blob(ep, {n * k}, at::kDouble).exp_();
  for (int64_t i = 0; i < n; ++i) {
    const double* ei = ep + i * k;
    double s = 0;
    for (int64_t j = 0; j < k; ++j) s += ei[j];
    (*sum)[i] = s;
  }
}

at::Tensor TopConfidence(const at::Tensor& logits, double temperature) {
  at::Tensor z = logits.to(at::kCPU, at::kDouble) / temperature;
  return std::get<0>(at::softmax(z, 1).max(1)).to(at::kFloat).contiguous();
}

SplitMetrics LabelledMetrics(const std::string& split, const at::Tensor& logits,
                             const at::Tensor& labels, int num_bins,
                             double temperature) {
  const at::Tensor z = logits.to(at::kCPU, at::kDouble).contiguous();
  const at::Tensor y = labels.to(at::kCPU, at::kInt).contiguous();
  const int64_t n = z.size(0), k = z.size(1);
  SplitMetrics m;
  m.split = split;
  m.count = n;
  if (n == 0) return m;
  // Plain loops over the rows in float64 (a tenth of the time of the same
  // sums as tensor operations on a few thousand rows): the softmax of z/T,
  // its top label (the first of equal maxima), NLL, Brier, entropy; the
  // probabilities kept in float32 for the metrics below.
  const double* zs = z.data_ptr<double>();
  const int32_t* ys = y.data_ptr<int32_t>();
  for (int64_t i = 0; i < n; ++i) {
    TORCH_CHECK(ys[i] >= 0 && ys[i] < k, "label ", ys[i], " of example ", i,
                " is outside [0, ", k, ")");
  }
  std::vector<double> e, sum;
  std::vector<int64_t> top;
  ScaledSoftmax(zs, n, k, 1 / temperature, &e, &top, &sum);
  std::vector<float> probs(static_cast<size_t>(n * k)), confidence(n);
  std::vector<uint8_t> correct(n);
  double nll = 0, brier = 0, entropy = 0, confidence_sum = 0;
  int64_t hits = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t label = ys[i];
    const double* row = zs + i * k;
    const double* ei = e.data() + i * k;
    const double log_sum = std::log(sum[i]);
    for (int64_t j = 0; j < k; ++j) {
      const double p = ei[j] / sum[i];
      const double log_p = (row[j] - row[top[i]]) / temperature - log_sum;
      const double gap = p - (j == label ? 1.0 : 0.0);
      brier += gap * gap;
      entropy -= p * log_p;
      probs[i * k + j] = static_cast<float>(p);
    }
    nll += log_sum - (row[label] - row[top[i]]) / temperature;
    const double top_p = 1 / sum[i];  // e = 1 at the top
    confidence_sum += top_p;
    confidence[i] = static_cast<float>(top_p);
    correct[i] = top[i] == label ? 1 : 0;
    hits += correct[i];
  }
  m.values.Set("accuracy", static_cast<double>(hits) / n);
  m.values.Set("nll", nll / n);
  m.values.Set("brier", brier / n);
  m.values.Set("mean_confidence", confidence_sum / n);
  m.values.Set("mean_entropy", entropy / n);

  absl::Span<const float> cs(confidence);
  absl::Span<const uint8_t> ks(correct);
  m.bins = calib::BinConfidences(cs, ks, num_bins);
  calib::Calibration c = CalibrationFromBins(m.bins);
  m.values.Set("ece", c.ece);
  m.values.Set("mce", c.mce);
  m.values.Set("oe", c.oe);
  m.values.Set("adaptive_ece", calib::AdaptiveEce(cs, ks, num_bins));
  if (temperature != 1.0) m.values.Set("temperature", temperature);
  // Beyond top-label ECE, torch-free from the probabilities.
  const absl::Span<const float> ps(probs);
  const absl::Span<const int32_t> labels_span(ys, static_cast<size_t>(n));
  m.values.Set("classwise_ece", calib::ClasswiseEce(ps, labels_span, static_cast<int>(k), num_bins));
  m.values.Set("l2_ce_debiased", calib::DebiasedL2CalibrationError(m.bins));
  m.values.Set("rmsce", calib::Rmsce(m.bins));
  const calib::SmoothEce smooth = calib::SmoothCalibrationError(cs, ks);
  m.values.Set("smece", smooth.value);
  const calib::BrierDecomposition d = calib::TopLabelBrierDecomposition(m.bins);
  m.values.Set("brier_reliability", d.reliability);
  m.values.Set("brier_resolution", d.resolution);
  m.values.Set("brier_uncertainty", d.uncertainty);
  m.values.Set("aurc", calib::Aurc(cs, ks));
  m.values.Set("mmce", calib::Mmce(cs, ks));
  m.values.Set("tace", calib::ThresholdedAdaptiveEce(ps, labels_span, static_cast<int>(k),
                                         num_bins));
  const calib::Interval ci = calib::BootstrapEceInterval(cs, ks, num_bins);
  m.values.Set("ece_low", ci.low);
  m.values.Set("ece_high", ci.high);
  // Metrics of the table that bring their own computation.
  const calib::SplitExamples examples{cs, ks, ps, labels_span,
                                      static_cast<int>(k)};
  for (const calib::Metric& metric : calib::Metrics())
    if (metric.compute) m.values.Set(metric, metric.compute(examples));
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
  m.values.Set("mean_confidence", conf.mean().item<double>());
  m.values.Set("mean_entropy", (-(p * logp).sum(1)).mean().item<double>());
  at::Tensor neg = conf.to(at::kFloat).contiguous();
  at::Tensor pos =
      in_distribution_confidence.to(at::kCPU, at::kFloat).contiguous();
  const absl::Span<const float> ps(pos.data_ptr<float>(), pos.numel());
  const absl::Span<const float> ns(neg.data_ptr<float>(), neg.numel());
  m.values.Set("auroc", calib::Auroc(ps, ns));
  m.values.Set("fpr95", calib::FprAtTpr(ps, ns, 0.95));
  m.values.Set("aupr", calib::AveragePrecision(ps, ns));
  m.estimators = "test split positive; fpr at tpr 0.95; aupr as average precision";
  return m;
}

double FitTemperature(const at::Tensor& logits, const at::Tensor& labels) {
  if (logits.size(0) == 0) return 1.0;
  TemperatureNll nll(logits, labels);
  // Golden-section search on u = log T.
  const double kInvPhi = (std::sqrt(5.0) - 1) / 2;
  double lo = std::log(0.01), hi = std::log(100.0);
  double a = hi - kInvPhi * (hi - lo), b = lo + kInvPhi * (hi - lo);
  double fa = nll(std::exp(a)), fb = nll(std::exp(b));
  while (hi - lo > 1e-7) {
    if (fa < fb) {
      hi = b;
      b = a;
      fb = fa;
      a = hi - kInvPhi * (hi - lo);
      fa = nll(std::exp(a));
    } else {
      lo = a;
      a = b;
      fa = fb;
      b = lo + kInvPhi * (hi - lo);
      fb = nll(std::exp(b));
    }
  }
  return std::exp((lo + hi) / 2);
}

}  // namespace mixcal::core
