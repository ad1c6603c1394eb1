// The training methods' strategies: what they refuse, what they draw from
// the epoch's stream and what a step returns.

#include "worker/core/training_method.h"

#include <torch/torch.h>

#include <cmath>
#include <memory>
#include <random>

#include "gtest/gtest.h"
#include "worker/core/methods.h"
#include "worker/core/network.h"

namespace mixcal::core {
namespace {

constexpr calib::MethodKind kEveryMethod[] = {
    calib::MethodKind::kBaseline,     calib::MethodKind::kMixup,
    calib::MethodKind::kFeatureMixup, calib::MethodKind::kLabelSmoothing,
    calib::MethodKind::kErl,          calib::MethodKind::kFocal,
    calib::MethodKind::kCutmix,       calib::MethodKind::kRegmixup,
    calib::MethodKind::kMmce,         calib::MethodKind::kManifoldMixup};

InputShape Shape() {
  InputShape s;
  s.channels = 1;
  s.height = s.width = 4;
  s.classes = 3;
  return s;
}

std::unique_ptr<Network> Mlp() {  // 3 stages: blocks 0 to 2
  at::manual_seed(1);
  calib::TrainConfig c;
  c.model = calib::ModelKind::kMlp;
  return MakeNetwork(c, Shape()).value();
}

TrainBatch Batch() {
  at::manual_seed(2);
  return {at::randn({8, 1, 4, 4}), at::randint(0, 3, {8}, at::kLong)};
}

TEST(TrainingMethodTest, ManifoldMixupRefusesBlocksBeyondTheModelsStages) {
  calib::TrainConfig c;
  c.method = calib::MethodKind::kManifoldMixup;
  c.mixup_blocks = {0, 3};
  absl::Status s = MakeTrainingMethod(c)->CheckModel(*Mlp(), Shape());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "mixup_blocks[1] is 3; mlp on these inputs has blocks 0 to 2");
  c.mixup_blocks = {0, 2};
  EXPECT_TRUE(MakeTrainingMethod(c)->CheckModel(*Mlp(), Shape()).ok());
}

TEST(TrainingMethodTest, EveryMethodTrainsAnyStagedModel) {
  for (calib::MethodKind m : kEveryMethod) {
    SCOPED_TRACE(calib::Name(m));
    calib::TrainConfig c;
    c.method = m;
    c.mixup_blocks = {0, 1, 2};
    std::unique_ptr<TrainingMethod> method = MakeTrainingMethod(c);
    std::unique_ptr<Network> model = Mlp();
    ASSERT_TRUE(method->CheckModel(*model, Shape()).ok());
    std::mt19937_64 rng(7);
    StepContext ctx;
    ctx.mix_rng = &rng;
    TrainBatch b = Batch();
    StepResult r = method->Step(*model, b, ctx);
    EXPECT_EQ(r.loss.dim(), 0);
    EXPECT_TRUE(r.loss.requires_grad());
    EXPECT_TRUE(std::isfinite(r.loss.item<double>()));
    EXPECT_FALSE(r.correct.requires_grad());
    EXPECT_GE(r.correct.item<double>(), 0.0);
    EXPECT_LE(r.correct.item<double>(), 8.0);
  }
}

TEST(TrainingMethodTest, MixupWithAlphaZeroDrawsNothingAndIsBaseline) {
  calib::TrainConfig c;
  c.method = calib::MethodKind::kMixup;
  c.alpha = 0;
  std::mt19937_64 rng(7), untouched(7);
  StepContext ctx;
  ctx.mix_rng = &rng;
  TrainBatch b = Batch();
  StepResult r = MakeTrainingMethod(c)->Step(*Mlp(), b, ctx);
  EXPECT_EQ(rng, untouched);
  calib::TrainConfig base;
  StepResult expected = MakeTrainingMethod(base)->Step(*Mlp(), b, ctx);
  EXPECT_EQ(r.loss.item<double>(), expected.loss.item<double>());
  EXPECT_EQ(r.correct.item<double>(), expected.correct.item<double>());
}

// As documented: every CutMix batch draws the same numbers (chance, lambda,
// centre) from the stream, whether it is mixed or not.
TEST(TrainingMethodTest, CutMixDrawsTheSameCountWhetherItMixesOrNot) {
  std::mt19937_64 after_mixed(7), after_clean(7);
  for (double prob : {1.0, 0.0}) {
    calib::TrainConfig c;
    c.method = calib::MethodKind::kCutmix;
    c.alpha = 1.0;
    c.cutmix_prob = prob;
    StepContext ctx;
    ctx.mix_rng = prob > 0 ? &after_mixed : &after_clean;
    MakeTrainingMethod(c)->Step(*Mlp(), Batch(), ctx);
  }
  EXPECT_EQ(after_mixed, after_clean);
  EXPECT_NE(after_mixed, std::mt19937_64(7));
}

TEST(TrainingMethodTest, MixupCountsLambdaWeightedAccuracy) {
  calib::TrainConfig c;
  c.method = calib::MethodKind::kMixup;
  c.alpha = 1.0;
  std::mt19937_64 rng(7);
  StepContext ctx;
  ctx.mix_rng = &rng;
  StepResult r = MakeTrainingMethod(c)->Step(*Mlp(), Batch(), ctx);
  // A weighted count is in general not a whole number of examples.
  const double correct = r.correct.item<double>();
  EXPECT_GE(correct, 0.0);
  EXPECT_LE(correct, 8.0);
  EXPECT_NE(correct, std::round(correct));
}

}  // namespace
}  // namespace mixcal::core
