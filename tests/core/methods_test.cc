// Each method's loss against a hand computation on a tiny batch, and the
// evaluation metrics against hand computations.

#include "worker/core/methods.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "worker/core/calibrators.h"
#include "worker/core/evaluate.h"
#include "worker/core/models.h"
#include <torch/torch.h>

namespace mixcal::core {
namespace {

// Two examples, three classes.
const std::vector<std::vector<double>> kLogits = {{1.0, 2.0, 0.5},
                                                  {0.0, -1.0, 3.0}};
const std::vector<int64_t> kLabels = {1, 0};

at::Tensor Logits() {
  return at::tensor({1.0, 2.0, 0.5, 0.0, -1.0, 3.0}, at::kDouble).view({2, 3});
}
at::Tensor Labels() {
  return at::tensor(std::vector<int64_t>{1, 0}, at::kLong);
}

// log p_k for one row, by hand.
std::vector<double> LogSoftmax(const std::vector<double>& z) {
  double m = std::max({z[0], z[1], z[2]});
  double s = 0;
  for (double v : z) s += std::exp(v - m);
  std::vector<double> out;
  for (double v : z) out.push_back(v - m - std::log(s));
  return out;
}

double HandCe(const std::vector<std::vector<double>>& target) {
  double total = 0;
  for (size_t i = 0; i < kLogits.size(); ++i) {
    std::vector<double> lp = LogSoftmax(kLogits[i]);
    for (int k = 0; k < 3; ++k) total -= target[i][k] * lp[k];
  }
  return total / kLogits.size();
}

std::vector<std::vector<double>> OneHot(const std::vector<int64_t>& y) {
  std::vector<std::vector<double>> t(y.size(), std::vector<double>(3, 0.0));
  for (size_t i = 0; i < y.size(); ++i) t[i][y[i]] = 1;
  return t;
}

TEST(MethodsTest, BaselineIsHardLabelCrossEntropy) {
  EXPECT_NEAR(CrossEntropy(Logits(), Labels()).item<double>(),
              HandCe(OneHot(kLabels)), 1e-12);
}

TEST(MethodsTest, MixupIsLambdaWeightedPairOfCrossEntropies) {
  const double lambda = 0.3;
  std::vector<int64_t> yb = {0, 1};  // labels[perm] with perm = {1, 0}
  auto ta = OneHot(kLabels), tb = OneHot(yb);
  double expected = lambda * HandCe(ta) + (1 - lambda) * HandCe(tb);
  at::Tensor y_b = at::tensor(yb, at::kLong);
  EXPECT_NEAR(MixupLoss(Logits(), Labels(), y_b, lambda).item<double>(),
              expected, 1e-12);
  // lambda = 1 is plain cross-entropy.
  EXPECT_NEAR(MixupLoss(Logits(), Labels(), y_b, 1.0).item<double>(),
              HandCe(ta), 1e-12);
}

TEST(MethodsTest, MixInputsIsConvexCombinationWithPermutation) {
  at::Tensor x = at::tensor({1.0, 2.0, 3.0, 4.0}, at::kDouble).view({2, 2});
  at::Tensor perm = at::tensor(std::vector<int64_t>{1, 0}, at::kLong);
  at::Tensor mixed = MixInputs(x, perm, 0.3);
  // 0.3*[1,2] + 0.7*[3,4] and 0.3*[3,4] + 0.7*[1,2]
  std::vector<double> expected = {2.4, 3.4, 1.6, 2.6};
  for (int i = 0; i < 4; ++i)
    EXPECT_NEAR(mixed.view({4})[i].item<double>(), expected[i], 1e-12);
}

TEST(MethodsTest, LabelSmoothingUniformPutsEpsOverKOnEveryClass) {
  const double eps = 0.2;
  auto t = OneHot(kLabels);
  for (auto& row : t)
    for (double& v : row)
      v = (1 - eps) * v + eps / 3;  // true class 1-eps+eps/K
  EXPECT_NEAR(
      LabelSmoothingLoss(Logits(), Labels(), eps, calib::SmoothingMode::kUniform)
          .item<double>(),
      HandCe(t), 1e-12);
}

TEST(MethodsTest, LabelSmoothingOthersPutsEpsOverKMinusOneOnWrongClasses) {
  const double eps = 0.2;
  auto t = OneHot(kLabels);
  for (auto& row : t)
    for (double& v : row) v = v == 1 ? 1 - eps : eps / 2;
  EXPECT_NEAR(
      LabelSmoothingLoss(Logits(), Labels(), eps, calib::SmoothingMode::kOthers)
          .item<double>(),
      HandCe(t), 1e-12);
}

TEST(MethodsTest, ErlSubtractsBetaTimesMeanEntropy) {
  const double beta = 0.5;
  double entropy = 0;
  for (const auto& z : kLogits) {
    std::vector<double> lp = LogSoftmax(z);
    for (double v : lp) entropy -= std::exp(v) * v;
  }
  entropy /= kLogits.size();
  EXPECT_NEAR(ErlLoss(Logits(), Labels(), beta).item<double>(),
              HandCe(OneHot(kLabels)) - beta * entropy, 1e-12);
}

TEST(MethodsTest, FeatureMixupTargetPolicies) {
  at::Tensor y = Labels();
  at::Tensor perm = at::tensor(std::vector<int64_t>{1, 0}, at::kLong);
  EXPECT_TRUE(
      FeatureMixupTarget(y, perm, 0.6, calib::LabelPolicy::kDominant).equal(y));
  EXPECT_TRUE(
      FeatureMixupTarget(y, perm, 0.5, calib::LabelPolicy::kDominant).equal(y));
  EXPECT_TRUE(FeatureMixupTarget(y, perm, 0.4, calib::LabelPolicy::kDominant)
                  .equal(at::tensor(std::vector<int64_t>{0, 1}, at::kLong)));
  EXPECT_TRUE(FeatureMixupTarget(y, perm, 0.1, calib::LabelPolicy::kFirst).equal(y));
}

// A fixed batch; the expected losses were computed by hand (Python's math
// module, from the definitions in docs/training-core.md):
//   logits [[2, 0, -1], [0.5, 1.5, 0], [3, 0, -2]], labels [0, 1, 2]
//   p_y = 0.8437947, 0.6285317, 0.0063775.
at::Tensor Logits3() {
  return at::tensor({2.0, 0.0, -1.0, 0.5, 1.5, 0.0, 3.0, 0.0, -2.0},
                    at::kDouble)
      .view({3, 3});
}
at::Tensor Labels3() { return at::tensor({0, 1, 2}, at::kLong); }

TEST(MethodsTest, FocalLossDownweightsConfidentExamples) {
  // Rows 0-1, gamma 2: mean of -(1 - p_y)^2 log p_y = 0.0341109473.
  at::Tensor z = Logits3().slice(0, 0, 2), y = Labels3().slice(0, 0, 2);
  EXPECT_NEAR(FocalLoss(z, y, 2.0, calib::FocalSchedule::kFixed).item<double>(),
              0.0341109473, 1e-9);
  // gamma 0 is cross-entropy.
  EXPECT_NEAR(FocalLoss(z, y, 0.0, calib::FocalSchedule::kFixed).item<double>(),
              CrossEntropy(z, y).item<double>(), 1e-12);
  // FLSD-53 with gamma 3: row 2 (p_y 0.0064 < 0.2) gets gamma 5:
  // 1.6400961466.
  EXPECT_NEAR(FocalLoss(Logits3(), Labels3(), 3.0, calib::FocalSchedule::kFlsd53)
                  .item<double>(),
              1.6400961466, 1e-9);
}

TEST(MethodsTest, MmceAddsLambdaTimesTheKernelCalibrationError) {
  // CE 1.8964000130; MMCE 0.2537918726 (rows 0-1 right, row 2 wrong,
  // Laplacian kernel of width 0.4); lambda 2: 2.4039837583.
  EXPECT_NEAR(MmceLoss(Logits3(), Labels3(), 2.0).item<double>(), 2.4039837583,
              1e-9);
  EXPECT_NEAR(MmceLoss(Logits3(), Labels3(), 0.0).item<double>(), 1.8964000130,
              1e-9);
}

TEST(MethodsTest, CutMixPastesTheOtherImagesBoxAndWeighsByArea) {
  // Image i holds the value i everywhere; lambda 0.75 cuts a box of ratio
  // sqrt(0.25) = 0.5: 2 x 2 of 4 x 4, centred at (2, 2): rows and columns
  // 1-2. The kept area is 12/16.
  at::Tensor x = at::arange(2, at::kFloat).view({2, 1, 1, 1}).expand({2, 1, 4, 4}).contiguous();
  at::Tensor perm = at::tensor({1, 0}, at::kLong);
  double kept = 0;
  at::Tensor out = CutMixInputs(x, perm, 0.75, 0.5, 0.5, &kept);
  EXPECT_DOUBLE_EQ(kept, 0.75);
  for (int r = 0; r < 4; ++r) {
    for (int c = 0; c < 4; ++c) {
      const bool inside = r >= 1 && r < 3 && c >= 1 && c < 3;
      EXPECT_EQ(out[0][0][r][c].item<float>(), inside ? 1.0f : 0.0f) << r << c;
      EXPECT_EQ(out[1][0][r][c].item<float>(), inside ? 0.0f : 1.0f) << r << c;
    }
  }
  // A box that leaves the image is clipped: centre at the corner keeps
  // 1 - (1 x 1)/16.
  CutMixInputs(x, perm, 0.75, 0.0, 0.0, &kept);
  EXPECT_DOUBLE_EQ(kept, 1.0 - 1.0 / 16);
}

TEST(CalibratorsTest, ScalingRecoversAKnownMiscalibration) {
  // Labels drawn from softmax(z); the model reports 3 z: three times too
  // sure. Vector scaling's weights should come back near 1/3, and no
  // scaling fits the validation NLL worse than temperature scaling, its
  // start.
  at::manual_seed(7);
  const int64_t n = 4000, k = 4;
  at::Tensor z = at::randn({n, k}, at::kDouble) * 1.5;
  at::Tensor y = at::multinomial(at::softmax(z, 1), 1).squeeze(1);
  at::Tensor reported = 3 * z;
  const double t = FitTemperature(reported, y);
  EXPECT_NEAR(t, 3.0, 0.3);
  auto nll = [&](const at::Tensor& logits) {
    return at::nll_loss(at::log_softmax(logits, 1), y).item<double>();
  };
  const double ts_nll = nll(reported / t);
  for (calib::Calibrator c : {calib::Calibrator::kVector, calib::Calibrator::kMatrix,
                              calib::Calibrator::kDirichlet}) {
    ScalingFit fit = FitScaling(c, reported, y, t);
    EXPECT_LE(nll(ApplyScaling(fit, reported)), ts_nll + 1e-9) << calib::Name(c);
    EXPECT_NE(DescribeScaling(fit).find(std::string(calib::Name(c))), std::string::npos);
  }
  ScalingFit v = FitScaling(calib::Calibrator::kVector, reported, y, t);
  for (int64_t i = 0; i < k; ++i) EXPECT_NEAR(v.w[i].item<double>(), 1.0 / 3, 0.05);
}

TEST(CalibratorsTest, ScalingFitsReachTheMinimum) {
  // Ten classes, a model both too sure and biased towards some classes (as
  // early in training). The ODIR objective, written here from its
  // definition, at each fit must be within 1e-6 of its minimum, found here
  // by L-BFGS run to a gradient of 1e-10 (L-BFGS capped at 50 iterations,
  // as fitted before, stopped far above it).
  at::manual_seed(11);
  const int64_t n = 3000, k = 10;
  at::Tensor z = at::randn({n, k}, at::kDouble) * 2;
  at::Tensor y = at::multinomial(at::softmax(z, 1), 1).squeeze(1);
  at::Tensor reported = 4 * z + at::linspace(-3, 3, k, at::kDouble);
  const double t = FitTemperature(reported, y);
  c10::InferenceMode no_inference(false);
  torch::AutoGradMode grad(true);
  for (calib::Calibrator c : {calib::Calibrator::kVector, calib::Calibrator::kMatrix,
                              calib::Calibrator::kDirichlet}) {
    const bool vector = c == calib::Calibrator::kVector;
    const at::Tensor x = c == calib::Calibrator::kDirichlet
                             ? at::log_softmax(reported, 1)
                             : reported.clone();
    auto objective = [&](const at::Tensor& w, const at::Tensor& b) {
      at::Tensor logits = vector ? x * w + b : at::matmul(x, w.t()) + b;
      at::Tensor loss = at::nll_loss(at::log_softmax(logits, 1), y);
      if (!vector) {
        at::Tensor off = 1 - at::eye(k, at::kDouble);
        loss = loss + 0.01 * ((w * off).pow(2).sum() / (k * (k - 1)) +
                              b.pow(2).sum() / k);
      }
      return loss;
    };
    const ScalingFit fit = FitScaling(c, reported, y, t);
    const double fitted = objective(fit.w, fit.b).item<double>();
    at::Tensor w = (vector ? at::full({k}, 1 / t, at::kDouble)
                           : at::eye(k, at::kDouble) / t)
                       .set_requires_grad(true);
    at::Tensor b = at::zeros({k}, at::kDouble).set_requires_grad(true);
    torch::optim::LBFGS opt({w, b}, torch::optim::LBFGSOptions(1.0)
                                        .max_iter(5000)
                                        .history_size(50)
                                        .tolerance_grad(1e-10)
                                        .tolerance_change(1e-15)
                                        .line_search_fn("strong_wolfe"));
    opt.step([&] {
      opt.zero_grad();
      at::Tensor loss = objective(w, b);
      loss.backward();
      return loss;
    });
    const double minimum = objective(w, b).item<double>();
    EXPECT_LT(fitted - minimum, 1e-6) << calib::Name(c);
  }
}

TEST(ManifoldMixupTest, MixingAtBlockKIsMixingThatStagesOutput) {
  // For every model: lambda 1 changes nothing; block 0 is input mixup;
  // block k mixes the output of the first k stages.
  at::manual_seed(3);
  for (calib::ModelKind kind : {calib::ModelKind::kMlp, calib::ModelKind::kLenet,
                                calib::ModelKind::kResnet18,
                                calib::ModelKind::kVgg16}) {
    SCOPED_TRACE(calib::Name(kind));
    auto model = MakeModel(kind, 3, 32, 32, 10);
    ASSERT_TRUE(model.ok()) << model.status();
    (*model)->eval();
    torch::NoGradGuard no_grad;
    at::Tensor x = at::randn({4, 3, 32, 32});
    at::Tensor perm = at::tensor({2, 3, 0, 1}, at::kLong);
    const int stages = (*model)->stages();
    ASSERT_GE(stages, 3);
    EXPECT_TRUE(at::allclose((*model)->forward_mixed(x, 1, perm, 1.0),
                             (*model)->forward(x), 1e-5, 1e-6));
    EXPECT_TRUE(at::allclose((*model)->forward_mixed(x, 0, perm, 0.3),
                             (*model)->forward(MixInputs(x, perm, 0.3)), 1e-5,
                             1e-6));
    const int k = stages - 1;  // mix just before the classifier
    at::Tensor h = x;
    for (int i = 0; i < k; ++i) h = (*model)->stage(i, h);
    at::Tensor expected = (*model)->stage(k, MixInputs(h, perm, 0.3));
    EXPECT_TRUE(at::allclose((*model)->forward_mixed(x, k, perm, 0.3), expected,
                             1e-5, 1e-6));
  }
}

TEST(EvaluateTest, LabelledMetricsByHand) {
  // Row 1: p = softmax(1, 2, 0.5), predicts 1 (right). Row 2 predicts 2
  // (wrong, label 0).
  SplitMetrics m = LabelledMetrics("test", Logits(), Labels(), 15);
  std::vector<double> lp1 = LogSoftmax(kLogits[0]),
                      lp2 = LogSoftmax(kLogits[1]);
  EXPECT_EQ(m.count, 2);
  EXPECT_NEAR(m.values.Get("accuracy").value(), 0.5, 1e-12);
  EXPECT_NEAR(m.values.Get("nll").value(), -(lp1[1] + lp2[0]) / 2, 1e-12);
  double brier = 0, entropy = 0;
  for (int k = 0; k < 3; ++k) {
    brier += std::pow(std::exp(lp1[k]) - (k == 1), 2) +
             std::pow(std::exp(lp2[k]) - (k == 0), 2);
    entropy -= std::exp(lp1[k]) * lp1[k] + std::exp(lp2[k]) * lp2[k];
  }
  EXPECT_NEAR(m.values.Get("brier").value(), brier / 2, 1e-12);
  EXPECT_NEAR(m.values.Get("mean_entropy").value(), entropy / 2, 1e-12);
  double c1 = std::exp(lp1[1]), c2 = std::exp(lp2[2]);
  EXPECT_NEAR(m.values.Get("mean_confidence").value(), (c1 + c2) / 2, 1e-12);
  // Different 15-bins: ECE = (|1-c1| + |0-c2|)/2, MCE = max.
  EXPECT_NEAR(m.values.Get("ece").value(), ((1 - c1) + c2) / 2, 1e-6);
  EXPECT_NEAR(m.values.Get("mce").value(), std::max(1 - c1, c2), 1e-6);
  EXPECT_NEAR(m.values.Get("oe").value(), (c2 * c2) / 2, 1e-6);
  int64_t total = 0;
  for (const calib::ReliabilityBin& b : m.bins) total += b.count;
  EXPECT_EQ(total, 2);
}

TEST(EvaluateTest, LabelOutsideTheClassesIsRefused) {
  EXPECT_THROW(LabelledMetrics("test", Logits(), at::tensor({1, 3}, at::kLong), 15),
               c10::Error);
  EXPECT_THROW(LabelledMetrics("test", Logits(), at::tensor({-1, 0}, at::kLong), 15),
               c10::Error);
}

TEST(EvaluateTest, TemperatureDividesLogits) {
  SplitMetrics hot = LabelledMetrics("test_ts", Logits(), Labels(), 15, 2.0);
  SplitMetrics ref = LabelledMetrics("test", Logits() / 2.0, Labels(), 15);
  EXPECT_NEAR(hot.values.Get("nll").value(), ref.values.Get("nll").value(), 1e-12);
  EXPECT_NEAR(hot.values.Get("ece").value(), ref.values.Get("ece").value(), 1e-12);
}

TEST(EvaluateTest, FittedTemperatureMinimisesNll) {
  // Overconfident logits: scaled-up versions of a mixed-accuracy set.
  at::Tensor z =
      at::tensor({4.0, 0.0, 0.0, 0.0, 4.0, 0.0, 4.0, 0.0, 0.0, 0.0, 0.0, 4.0},
                 at::kDouble)
          .view({4, 3}) *
      3.0;
  at::Tensor y = at::tensor(std::vector<int64_t>{0, 1, 1, 2}, at::kLong);
  double t = FitTemperature(z, y);
  auto nll = [&](double temp) {
    return at::nll_loss(at::log_softmax(z / temp, 1), y).item<double>();
  };
  EXPECT_GT(t, 1.0);  // overconfident: T > 1 softens
  EXPECT_LE(nll(t), nll(t * 1.01) + 1e-12);
  EXPECT_LE(nll(t), nll(t / 1.01) + 1e-12);
  EXPECT_LT(nll(t), nll(1.0));
}

TEST(EvaluateTest, UnlabelledMetricsAuroc) {
  // OOD inputs with uniform logits have confidence 1/3; in-distribution
  // confidences all higher: AUROC 1.
  at::Tensor ood = at::zeros({5, 3}, at::kDouble);
  at::Tensor in_conf = at::tensor({0.9f, 0.8f, 0.7f});
  SplitMetrics m = UnlabelledMetrics("noise", ood, in_conf);
  EXPECT_FALSE(m.has_labels);
  EXPECT_EQ(m.count, 5);
  EXPECT_NEAR(m.values.Get("mean_confidence").value(), 1.0 / 3, 1e-9);
  EXPECT_NEAR(m.values.Get("mean_entropy").value(), std::log(3.0), 1e-9);
  ASSERT_TRUE(m.values.Get("auroc").has_value());
  EXPECT_DOUBLE_EQ(*m.values.Get("auroc"), 1.0);
}

}  // namespace
}  // namespace mixcal::core
