// What one epoch's metrics and post-hoc fits cost, call by call: the
// labelled split's metrics (LabelledMetrics) and the slowest of its parts,
// and each calibrator's fit, on synthetic overconfident logits of the
// quickstart's sizes (6,000 validation and 5,000 test rows, 10 classes),
// one thread. Prints milliseconds per call, medians of REPEATS calls.
// bench/calibrators_bench.sh measures the same inside real epochs.
//
//   build/bench/mixcal-bench-metrics [repeats]

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "calib/calibrators.h"
#include "calib/metrics.h"
#include "worker/core/calibrators.h"
#include "worker/core/evaluate.h"

namespace {

using Clock = std::chrono::steady_clock;

// Median milliseconds per call of `f` over `repeats` calls (one untimed).
double Milliseconds(int repeats, const std::function<void()>& f) {
  f();
  std::vector<double> ms;
  for (int r = 0; r < repeats; ++r) {
    const auto start = Clock::now();
    f();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start)
                     .count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// A model too sure of itself and biased towards some classes (as early in
// training): labels drawn from softmax(z), logits reported as 4z + bias.
std::pair<at::Tensor, at::Tensor> Logits(int64_t n, int64_t k) {
  const at::Tensor z = at::randn({n, k}, at::kDouble) * 2;
  const at::Tensor y = at::multinomial(at::softmax(z, 1), 1).squeeze(1);
  return {4 * z + at::linspace(-3, 3, k, at::kDouble), y};
}

}  // namespace

int main(int argc, char** argv) {
  using namespace mixcal;
  const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 20;
  at::set_num_threads(1);
  at::manual_seed(7);
  c10::InferenceMode inference;
  const int64_t k = 10;
  const auto [val, val_y] = Logits(6000, k);
  const auto [test, test_y] = Logits(5000, k);
  const double t = core::FitTemperature(val, val_y);

  // The test split's top-label confidences and class probabilities.
  const at::Tensor p = at::softmax(test, 1);
  const at::Tensor conf = std::get<0>(p.max(1)).to(at::kFloat).contiguous();
  const at::Tensor hit =
      std::get<1>(p.max(1)).eq(test_y).to(at::kByte).contiguous();
  const at::Tensor pf = p.to(at::kFloat).contiguous();
  const at::Tensor yi = test_y.to(at::kInt).contiguous();
  const absl::Span<const float> cs(conf.data_ptr<float>(), conf.numel());
  const absl::Span<const uint8_t> ks(hit.data_ptr<uint8_t>(), hit.numel());
  const absl::Span<const float> ps(pf.data_ptr<float>(), pf.numel());
  const absl::Span<const int32_t> ys(yi.data_ptr<int32_t>(), yi.numel());
  const at::Tensor pv = at::softmax(val, 1).to(at::kFloat).contiguous();
  const at::Tensor yv = val_y.to(at::kInt).contiguous();
  const absl::Span<const float> pvs(pv.data_ptr<float>(), pv.numel());
  const absl::Span<const int32_t> yvs(yv.data_ptr<int32_t>(), yv.numel());

  std::printf("ms per call (median of %d), 5,000 test and 6,000 validation rows, "
              "10 classes, one thread\n", repeats);
  auto row = [&](const char* name, const std::function<void()>& f) {
    std::printf("  %-34s %7.2f\n", name, Milliseconds(repeats, f));
  };
  row("labelled split metrics (all)", [&] {
    core::LabelledMetrics("test", test, test_y, 15);
  });
  row("  ece bootstrap interval (200)", [&] {
    calib::BootstrapEceInterval(cs, ks, 15);
  });
  // The first call of an epoch, which draws the resamples (the rest reuse
  // them).
  calib::SetBootstrapDrawTableBytesForTesting(0);
  row("  the same, drawing the resamples", [&] {
    calib::BootstrapEceInterval(cs, ks, 15);
  });
  calib::SetBootstrapDrawTableBytesForTesting(16 << 20);
  row("  thresholded adaptive ece", [&] {
    calib::ThresholdedAdaptiveEce(ps, ys, static_cast<int>(k), 15);
  });
  row("  smooth ece", [&] { calib::SmoothCalibrationError(cs, ks); });
  row("  adaptive ece", [&] { calib::AdaptiveEce(cs, ks, 15); });
  row("  aurc", [&] { calib::Aurc(cs, ks); });
  row("  mmce", [&] { calib::Mmce(cs, ks); });
  row("  classwise ece", [&] {
    calib::ClasswiseEce(ps, ys, static_cast<int>(k), 15);
  });
  row("temperature fit", [&] { core::FitTemperature(val, val_y); });
  row("vector scaling fit", [&] {
    core::FitScaling(calib::Calibrator::kVector, val, val_y, t);
  });
  row("matrix scaling fit", [&] {
    core::FitScaling(calib::Calibrator::kMatrix, val, val_y, t);
  });
  row("dirichlet fit", [&] {
    core::FitScaling(calib::Calibrator::kDirichlet, val, val_y, t);
  });
  row("histogram binning fit + apply", [&] {
    calib::Apply(calib::FitHistogramBinning(pvs, yvs, static_cast<int>(k), 15), ps);
  });
  row("isotonic fit + apply", [&] {
    calib::Apply(calib::FitIsotonic(pvs, yvs, static_cast<int>(k)), ps);
  });
  row("platt fit + apply", [&] {
    calib::Apply(calib::FitPlattTopLabel(pvs, yvs, static_cast<int>(k)), ps,
                 static_cast<int>(k));
  });
  row("beta fit + apply", [&] {
    calib::Apply(calib::FitBetaTopLabel(pvs, yvs, static_cast<int>(k)), ps,
                 static_cast<int>(k));
  });
  return 0;
}
