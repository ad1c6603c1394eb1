#include "worker/core/evaluation_pass.h"

#include <torch/torch.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/types/span.h"
#include "calib/calibrators.h"
#include "calib/predictions.h"
#include "worker/core/calibrators.h"
#include "worker/core/evaluate.h"

namespace mixcal::core {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// Logits of `images` (raw, on the device) in evaluation batches, on the CPU.
at::Tensor EvalLogits(Network& model, const Normalizer& normalize,
                      const at::Tensor& images, int batch, bool autocast,
                      bool channels_last) {
  std::vector<at::Tensor> parts;
  const int64_t n = images.size(0);
  CudaAutocast guard(autocast);
  for (int64_t i = 0; i < n; i += batch) {
    at::Tensor x = normalize(ToModelLayout(
        images.slice(0, i, std::min(n, i + batch)), channels_last));
    parts.push_back(model.Forward(x).to(at::kFloat));
  }
  if (parts.empty()) return at::empty({0, 0});
  return at::cat(parts).to(at::kCPU);
}

// The validation and test probabilities the torch-free calibrators work
// on, computed once an epoch for all of them.
struct CalibratorInputs {
  std::vector<float> val, test;
  std::vector<int32_t> val_labels;
};

// The metrics of the test split under calibrator `cal` fitted on the
// validation split (its split name and fitted parameters set).
SplitMetrics CalibratedMetrics(calib::Calibrator cal,
                               const at::Tensor& val_logits,
                               const at::Tensor& val_y,
                               const at::Tensor& test_logits,
                               const at::Tensor& test_y, double temperature,
                               int bins,
                               std::optional<CalibratorInputs>* inputs) {
  const std::string split(calib::SplitOf(cal));
  if (cal == calib::Calibrator::kVector || cal == calib::Calibrator::kMatrix ||
      cal == calib::Calibrator::kDirichlet) {
    const ScalingFit fit = FitScaling(cal, val_logits, val_y, temperature);
    SplitMetrics m =
        LabelledMetrics(split, ApplyScaling(fit, test_logits), test_y, bins);
    m.calibration = DescribeScaling(fit);
    return m;
  }
  // The torch-free ones work on probabilities.
  // In float32, the model's own precision (1.0 ms an epoch on the
  // quickstart's setting where a float64 softmax rounded to float32 took
  // 1.5 ms).
  auto probs = [](const at::Tensor& z) {
    at::Tensor p = at::softmax(z.to(at::kCPU, at::kFloat), 1).contiguous();
    return std::vector<float>(p.data_ptr<float>(),
                              p.data_ptr<float>() + p.numel());
  };
  auto labels = [](const at::Tensor& y) {
    at::Tensor i = y.to(at::kCPU, at::kInt).contiguous();
    return std::vector<int32_t>(i.data_ptr<int32_t>(),
                                i.data_ptr<int32_t>() + i.numel());
  };
  const int k = static_cast<int>(test_logits.size(1));
  if (!inputs->has_value())
    inputs->emplace(
        CalibratorInputs{probs(val_logits), probs(test_logits), labels(val_y)});
  const std::vector<float>& pv = (*inputs)->val;
  const std::vector<float>& pt = (*inputs)->test;
  const std::vector<int32_t>& yv = (*inputs)->val_labels;
  std::vector<float> out;
  std::string described;
  if (cal == calib::Calibrator::kHistogram) {
    const calib::HistogramBinning h =
        calib::FitHistogramBinning(pv, yv, k, bins);
    out = calib::Apply(h, pt);
    described = calib::Describe(h);
  } else if (cal == calib::Calibrator::kIsotonic) {
    const calib::IsotonicCalibration iso = calib::FitIsotonic(pv, yv, k);
    out = calib::Apply(iso, pt);
    described = calib::Describe(iso);
  } else if (cal == calib::Calibrator::kBeta) {
    const calib::BetaTopLabel beta = calib::FitBetaTopLabel(pv, yv, k);
    out = calib::Apply(beta, pt, k);
    described = calib::Describe(beta);
  } else {
    const calib::PlattTopLabel platt = calib::FitPlattTopLabel(pv, yv, k);
    out = calib::Apply(platt, pt, k);
    described = calib::Describe(platt);
  }
  // As logits: log p (softmax of it gives p back; 0 becomes a tiny floor).
  at::Tensor p = at::from_blob(out.data(), {test_logits.size(0), k}, at::kFloat)
                     .to(at::kDouble);
  SplitMetrics m =
      LabelledMetrics(split, at::log(at::clamp_min(p, 1e-12)), test_y, bins);
  m.calibration = std::move(described);
  return m;
}

// Temperature scaling judged on the validation split without judging any
// example by a temperature fitted on it: two-fold cross-fitting (the first
// half's logits scaled by the temperature fitted on the second half, and
// the other way round), scored together as split val_ts.
SplitMetrics CrossFittedTemperatureMetrics(const at::Tensor& logits,
                                           const at::Tensor& labels,
                                           int bins) {
  const int64_t n = logits.size(0);
  const int64_t half = n / 2;
  at::Tensor scaled;
  double t_mean = 1;
  if (half < 1) {
    scaled = logits;
  } else {
    const at::Tensor la = logits.slice(0, 0, half);
    const at::Tensor lb = logits.slice(0, half, n);
    const double ta = FitTemperature(la, labels.slice(0, 0, half));
    const double tb = FitTemperature(lb, labels.slice(0, half, n));
    scaled = at::cat({la / tb, lb / ta});
    t_mean = (ta + tb) / 2;
  }
  SplitMetrics m = LabelledMetrics("val_ts", scaled, labels, bins);
  m.values.Set("temperature", t_mean);
  return m;
}

}  // namespace

void EvaluateEpoch(const calib::TrainConfig& config, int epoch,
                   const Execution& exec, const Normalizer& normalize,
                   const EvalSets& sets, Network& model,
                   EpochReport* report) {
  auto eval_start = Clock::now();
  double metrics_seconds = 0;
  {
    c10::InferenceMode inference(model.InferenceModeSafe());
    at::NoGradGuard no_grad;
    model.SetTraining(false);
    const int eb = config.eval_batch_size;
    at::Tensor test_logits = EvalLogits(model, normalize, sets.test_x, eb,
                                        exec.cuda, exec.channels_last);
    report->eval_samples += sets.test_x.size(0);
    auto m0 = Clock::now();
    report->splits.push_back(
        LabelledMetrics("test", test_logits, sets.test_y, config.ece_bins));
    if (calib::KeepsPredictions(config, epoch)) {
      const at::Tensor probs =
          at::softmax(test_logits.to(at::kFloat), 1).contiguous();
      const at::Tensor labels = sets.test_y.to(at::kInt).contiguous();
      KeptPredictions kept;
      kept.split = "test";
      kept.count = probs.size(0);
      kept.classes = static_cast<int>(probs.size(1));
      kept.probabilities = calib::EncodeProbabilities(absl::MakeConstSpan(
          probs.data_ptr<float>(), static_cast<size_t>(probs.numel())));
      kept.labels = calib::EncodeLabels(absl::MakeConstSpan(
          labels.data_ptr<int32_t>(), static_cast<size_t>(labels.numel())));
      const at::Tensor log_p =
          at::log_softmax(test_logits.to(at::kFloat), 1)
              .gather(1, sets.test_y.to(at::kLong).view({-1, 1}))
              .view({-1})
              .contiguous();
      kept.label_log_probs.assign(
          reinterpret_cast<const char*>(log_p.data_ptr<float>()),
          static_cast<size_t>(log_p.numel()) * sizeof(float));
      report->predictions.push_back(std::move(kept));
    }
    at::Tensor test_conf;  // for the OOD AUROCs only
    if (sets.noise_x.defined() || sets.ood_x.defined())
      test_conf = TopConfidence(test_logits);
    metrics_seconds += Seconds(m0);
    at::Tensor val_logits;
    if (sets.val_x.defined() && sets.val_x.size(0) > 0) {
      val_logits = EvalLogits(model, normalize, sets.val_x, eb, exec.cuda,
                              exec.channels_last);
      report->eval_samples += sets.val_x.size(0);
      auto m1 = Clock::now();
      // The held-out split, scored every epoch: what an epoch or a
      // hyperparameter is chosen on, so that test data chooses nothing.
      report->splits.push_back(
          LabelledMetrics("val", val_logits, sets.val_y, config.ece_bins));
      if (config.temperature_scaling) {
        report->splits.push_back(
            CrossFittedTemperatureMetrics(val_logits, sets.val_y,
                                          config.ece_bins));
      }
      metrics_seconds += Seconds(m1);
    }
    if ((config.temperature_scaling || !config.calibrators.empty()) &&
        val_logits.defined()) {
      auto m1 = Clock::now();
      double t = FitTemperature(val_logits, sets.val_y);
      if (config.temperature_scaling) {
        SplitMetrics ts = LabelledMetrics("test_ts", test_logits, sets.test_y,
                                          config.ece_bins, t);
        ts.values.Set("temperature", t);
        ts.calibration =
            absl::StrFormat("{\"calibrator\":\"temperature\",\"T\":%.9g}", t);
        report->splits.push_back(std::move(ts));
      }
      std::optional<CalibratorInputs> inputs;
      for (calib::Calibrator cal : config.calibrators) {
        report->splits.push_back(CalibratedMetrics(cal, val_logits, sets.val_y,
                                                   test_logits, sets.test_y, t,
                                                   config.ece_bins, &inputs));
      }
      metrics_seconds += Seconds(m1);
    }
    if (sets.train_eval_x.defined()) {
      at::Tensor logits = EvalLogits(model, normalize, sets.train_eval_x, eb,
                                     exec.cuda, exec.channels_last);
      report->eval_samples += sets.train_eval_x.size(0);
      auto m2 = Clock::now();
      report->splits.push_back(
          LabelledMetrics("train", logits, sets.train_eval_y, config.ece_bins));
      metrics_seconds += Seconds(m2);
    }
    if (sets.noise_x.defined()) {
      // noise_x is already in normalised space: forward it directly.
      std::vector<at::Tensor> parts;
      {
        CudaAutocast guard(exec.cuda);
        for (int64_t i = 0; i < sets.noise_x.size(0); i += eb)
          parts.push_back(
              model
                  .Forward(ToModelLayout(sets.noise_x.slice(0, i, i + eb),
                                         exec.channels_last))
                  .to(at::kFloat));
      }
      at::Tensor logits = at::cat(parts).to(at::kCPU);
      report->eval_samples += sets.noise_x.size(0);
      auto m3 = Clock::now();
      report->splits.push_back(UnlabelledMetrics("noise", logits, test_conf));
      metrics_seconds += Seconds(m3);
    }
    if (sets.ood_x.defined()) {
      at::Tensor logits = EvalLogits(model, normalize, sets.ood_x, eb,
                                     exec.cuda, exec.channels_last);
      report->eval_samples += sets.ood_x.size(0);
      auto m4 = Clock::now();
      report->splits.push_back(UnlabelledMetrics("ood", logits, test_conf));
      metrics_seconds += Seconds(m4);
    }
  }
  report->eval_seconds = Seconds(eval_start);
  report->metrics_seconds = metrics_seconds;
  // Every split's row carries the epoch's training metrics.
  for (SplitMetrics& m : report->splits) {
    m.values.Set("train_loss", report->train_loss);
    m.values.Set("train_accuracy", report->train_accuracy);
    m.values.Set("lr", report->lr);
    m.values.Set("samples_per_sec", report->samples_per_sec);
  }
}

}  // namespace mixcal::core
