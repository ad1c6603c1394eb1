// calib's metrics beyond top-label ECE against golden values that
// tests/calib/golden_metrics.py computes independently with NumPy and
// scikit-learn on a fixed random dataset (never against calib itself),
// plus small cases by hand.

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "calib/calibrators.h"
#include "calib/metrics.h"
#include "gtest/gtest.h"

namespace mixcal::calib {
namespace {

struct Golden {
  std::vector<float> probs, pos, neg, conf2;
  std::vector<uint8_t> hits2;
  std::vector<double> hist_test, iso_test;
  std::vector<int32_t> labels;
  std::map<std::string, double> values;
  int n = 0, k = 0;
};

Golden Compute() {
  const std::string out = std::filesystem::temp_directory_path() /
                          ("mixcal_golden_" + std::to_string(getpid()) + ".txt");
  const std::string cmd = std::string("/usr/bin/python3 ") + MIXCAL_SOURCE_DIR +
                          "/tests/calib/golden_metrics.py " + out;
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  Golden g;
  std::ifstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream s(line);
    std::string name;
    s >> name;
    if (name == "probs" || name == "pos" || name == "neg" || name == "conf2") {
      std::vector<float>& v = name == "probs" ? g.probs
                              : name == "pos" ? g.pos
                              : name == "neg" ? g.neg
                                              : g.conf2;
      float x;
      while (s >> x) v.push_back(x);
    } else if (name == "hist_test" || name == "iso_test") {
      std::vector<double>& v = name == "hist_test" ? g.hist_test : g.iso_test;
      double x;
      while (s >> x) v.push_back(x);
    } else if (name == "hits2") {
      int x;
      while (s >> x) g.hits2.push_back(static_cast<uint8_t>(x));
    } else if (name == "labels") {
      int32_t x;
      while (s >> x) g.labels.push_back(x);
    } else if (name == "n") {
      s >> g.n;
    } else if (name == "k") {
      s >> g.k;
    } else {
      double x;
      s >> x;
      g.values[name] = x;
    }
  }
  std::filesystem::remove(out);
  return g;
}

// The script takes seconds: run once for every test here.
const Golden& Load() {
  static const Golden* g = new Golden(Compute());
  return *g;
}

TEST(GoldenMetricsTest, AgreeWithNumPyAndScikitLearn) {
  const Golden g = Load();
  ASSERT_EQ(g.n, 600);
  ASSERT_EQ(g.probs.size(), 600u * 5);
  ASSERT_EQ(g.labels.size(), 600u);
  std::vector<float> conf(g.n);
  std::vector<uint8_t> correct(g.n);
  for (int i = 0; i < g.n; ++i) {
    int best = 0;
    for (int j = 1; j < g.k; ++j)
      if (g.probs[i * g.k + j] > g.probs[i * g.k + best]) best = j;
    conf[i] = g.probs[i * g.k + best];
    correct[i] = best == g.labels[i];
  }
  const std::vector<ReliabilityBin> bins = BinConfidences(conf, correct, 15);
  EXPECT_NEAR(ClasswiseEce(g.probs, g.labels, g.k, 15), g.values.at("classwise_ece"), 1e-9);
  EXPECT_NEAR(DebiasedL2CalibrationError(bins), g.values.at("debiased_l2"), 1e-9);
  const BrierDecomposition d = TopLabelBrierDecomposition(bins);
  EXPECT_NEAR(d.reliability, g.values.at("brier_reliability"), 1e-9);
  EXPECT_NEAR(d.resolution, g.values.at("brier_resolution"), 1e-9);
  EXPECT_NEAR(d.uncertainty, g.values.at("brier_uncertainty"), 1e-9);
  EXPECT_NEAR(Aurc(conf, correct), g.values.at("aurc"), 1e-9);
  EXPECT_NEAR(FprAtTpr(g.pos, g.neg, 0.95), g.values.at("fpr95"), 1e-12);
  EXPECT_NEAR(AveragePrecision(g.pos, g.neg), g.values.at("aupr"), 1e-9);
  EXPECT_NEAR(Mmce(conf, correct), g.values.at("mmce"), 1e-9);
  EXPECT_NEAR(ThresholdedAdaptiveEce(g.probs, g.labels, g.k, 15),
              g.values.at("tace"), 1e-9);
  EXPECT_NEAR(Rmsce(bins), g.values.at("rmsce"), 1e-9);
  // Smooth ECE: NumPy sums the reflected kernel exactly over a fine grid;
  // calib spreads the examples over a coarser one, so within 0.5%.
  const SmoothEce sm = SmoothCalibrationError(conf, correct);
  EXPECT_NEAR(sm.value, g.values.at("smece"), 0.005 * g.values.at("smece"));
  EXPECT_NEAR(sm.width, g.values.at("smece_width"), 0.005 * g.values.at("smece_width"));
  ASSERT_EQ(g.conf2.size(), 1000u);
  ASSERT_EQ(g.hits2.size(), 1000u);
  const SmoothEce sm2 = SmoothCalibrationError(g.conf2, g.hits2);
  EXPECT_NEAR(sm2.value, g.values.at("smece2"), 0.005 * g.values.at("smece2"));
  EXPECT_NEAR(sm2.width, g.values.at("smece2_width"), 0.005 * g.values.at("smece2_width"));
  // The bootstrap interval: NumPy's quantiles of 4,000 resamples (another
  // random stream) within Monte Carlo error; wider on a tenth of the data.
  EXPECT_NEAR(CalibrationFromBins(bins).ece, g.values.at("ece"), 1e-9);
  const Interval ci = BootstrapEceInterval(conf, correct, 15, 4000);
  EXPECT_NEAR(ci.low, g.values.at("boot_low"), 0.004);
  EXPECT_NEAR(ci.high, g.values.at("boot_high"), 0.004);
  const Interval small = BootstrapEceInterval(
      absl::MakeConstSpan(conf).subspan(0, 60),
      absl::MakeConstSpan(correct).subspan(0, 60), 15, 400);
  EXPECT_GT(small.high - small.low, ci.high - ci.low);
  // Deterministic for a seed, whether the draws are kept between calls or
  // drawn again (a limit of 0 keeps none).
  const Interval again = BootstrapEceInterval(conf, correct, 15, 4000);
  EXPECT_EQ(again.low, ci.low);
  EXPECT_EQ(again.high, ci.high);
  SetBootstrapDrawTableBytesForTesting(0);
  const Interval drawn = BootstrapEceInterval(conf, correct, 15, 4000);
  SetBootstrapDrawTableBytesForTesting(16 << 20);
  EXPECT_EQ(drawn.low, ci.low);
  EXPECT_EQ(drawn.high, ci.high);
  // Another seed, other draws.
  const Interval other = BootstrapEceInterval(conf, correct, 15, 4000, 0.95, 1);
  EXPECT_NE(other.low, ci.low);
  EXPECT_NEAR(other.low, ci.low, 0.004);
}

TEST(GoldenCalibratorsTest, AgreeWithNumPyAndScikitLearn) {
  const Golden g = Load();
  const int half = g.n / 2;
  const absl::Span<const float> val(g.probs.data(), half * g.k);
  const absl::Span<const float> test(g.probs.data() + half * g.k, half * g.k);
  const absl::Span<const int32_t> yv(g.labels.data(), half);
  const std::vector<float> hist =
      Apply(FitHistogramBinning(val, yv, g.k, 15), test);
  ASSERT_EQ(hist.size(), g.hist_test.size());
  for (size_t i = 0; i < hist.size(); ++i)
    ASSERT_NEAR(hist[i], g.hist_test[i], 1e-6) << i;
  const std::vector<float> iso = Apply(FitIsotonic(val, yv, g.k), test);
  ASSERT_EQ(iso.size(), g.iso_test.size());
  for (size_t i = 0; i < iso.size(); ++i)
    ASSERT_NEAR(iso[i], g.iso_test[i], 1e-6) << i;
  const PlattTopLabel platt = FitPlattTopLabel(val, yv, g.k);
  EXPECT_NEAR(platt.a, g.values.at("platt_a"), 1e-5);
  EXPECT_NEAR(platt.b, g.values.at("platt_b"), 1e-5);
  const BetaTopLabel beta = FitBetaTopLabel(val, yv, g.k);
  EXPECT_NEAR(beta.a, g.values.at("beta_a"), 1e-4);
  EXPECT_NEAR(beta.b, g.values.at("beta_b"), 1e-4);
  EXPECT_NEAR(beta.m, g.values.at("beta_m"), 1e-4);
  // Applied, every row is a distribution and the top label gets
  // sigmoid(a logit(c) + b).
  const std::vector<float> cal = Apply(platt, test, g.k);
  for (int i = 0; i < half; ++i) {
    double sum = 0;
    for (int j = 0; j < g.k; ++j) sum += cal[i * g.k + j];
    ASSERT_NEAR(sum, 1.0, 1e-5) << i;
  }
}

TEST(GoldenMetricsTest, SmallCasesByHand) {
  // Risk-coverage: confidences 0.9 (right), 0.8 (wrong), 0.7 (right):
  // risks 0/1, 1/2, 1/3 -> AURC (0 + 1/2 + 1/3) / 3 = 5/18.
  const std::vector<float> c = {0.7f, 0.9f, 0.8f};
  const std::vector<uint8_t> ok = {1, 1, 0};
  EXPECT_NEAR(Aurc(c, ok), 5.0 / 18, 1e-12);
  // Positives 0.9, 0.8, 0.3; negatives 0.85, 0.2. Average precision:
  // thresholds 0.9 (P 1, R 1/3), 0.85 (P 1/2, R 1/3), 0.8 (P 2/3, R 2/3),
  // 0.3 (P 3/4, R 1), 0.2 -> 1/3 * 1 + 1/3 * 2/3 + 1/3 * 3/4 = 29/36.
  const std::vector<float> pos = {0.9f, 0.8f, 0.3f}, neg = {0.85f, 0.2f};
  EXPECT_NEAR(AveragePrecision(pos, neg), 29.0 / 36, 1e-7);
  // 95% of 3 positives: all 3, threshold 0.3: both negatives... 0.85 and
  // 0.2: one of two at or above -> FPR 0.5.
  EXPECT_NEAR(FprAtTpr(pos, neg, 0.95), 0.5, 1e-12);
  // One bin of 4 examples, confidence 0.75, 2 right: gap 0.25, debiased
  // term 0.0625 - 0.5 * 0.5 / 3 < 0 -> 0: four examples cannot tell.
  std::vector<ReliabilityBin> bins(15);
  bins[11] = {4, 3.0, 2};
  EXPECT_DOUBLE_EQ(DebiasedL2CalibrationError(bins), 0.0);
  const BrierDecomposition d = TopLabelBrierDecomposition(bins);
  EXPECT_NEAR(d.reliability, 0.0625, 1e-12);
  EXPECT_NEAR(d.resolution, 0.0, 1e-12);
  EXPECT_NEAR(d.uncertainty, 0.25, 1e-12);
  // ... and RMSCE without the correction: the gap itself.
  EXPECT_NEAR(Rmsce(bins), 0.25, 1e-12);
  // Bins 0.25 apart in confidence: (0.2, 2 of 2 right) and (0.9, 0 of 2):
  // sqrt(0.5 * 0.8^2 + 0.5 * 0.9^2).
  std::vector<ReliabilityBin> two(15);
  two[2] = {2, 0.4, 2};
  two[13] = {2, 1.8, 0};
  EXPECT_NEAR(Rmsce(two), std::sqrt(0.5 * 0.64 + 0.5 * 0.81), 1e-12);
}

TEST(SmoothEceTest, OneSignedResidualsGiveTheirMean) {
  // The reflected kernel integrates to 1 over [0, 1] at every width, so
  // where every residual has one sign smECE_s = |mean(c - r)| for all s and
  // the fixed point is that mean. Near the edge (0.9) and wide (0.9), the
  // kernel's mass outside [0, 1] must come back by reflection.
  const std::vector<float> one = {0.9f};
  const std::vector<uint8_t> wrong = {0};
  SmoothEce s = SmoothCalibrationError(one, wrong);
  EXPECT_NEAR(s.value, 0.9, 0.9 * 1e-3);
  EXPECT_NEAR(s.width, 0.9, 0.9 * 1e-3);
  // Residuals of both signs, 0.6 right (+0.4), 0.7 and 0.95 wrong: smECE_s
  // lies between |mean| = 1.25/3 (all cancelling) and mean |.| = 2.05/3
  // (none). Narrow kernels keep them apart (above 1.25/3); at the fixed
  // point, about 0.42 wide, the +0.4 is swamped everywhere: 1.25/3.
  const std::vector<float> c = {0.6f, 0.7f, 0.95f};
  const std::vector<uint8_t> ok = {1, 0, 0};
  s = SmoothCalibrationError(c, ok);
  EXPECT_NEAR(s.value, 1.25 / 3, 1e-3);
  // Calibrated by construction: pairs at 0.5, one right and one wrong,
  // cancel exactly at every width: the width falls to its floor.
  const std::vector<float> half = {0.5f, 0.5f, 0.5f, 0.5f};
  const std::vector<uint8_t> mixed = {1, 0, 1, 0};
  s = SmoothCalibrationError(half, mixed);
  EXPECT_LT(s.value, 1e-3);
  EXPECT_TRUE(SmoothCalibrationError({}, {}).value == 0);
}

}  // namespace
}  // namespace mixcal::calib
