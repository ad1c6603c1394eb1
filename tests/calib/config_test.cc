#include "calib/config.h"

#include <string>

#include "gtest/gtest.h"

namespace mixcal::calib {
namespace {

// The message must name the field and the allowed range.
void ExpectInvalid(const TrainConfig& c, const std::string& field,
                   const std::string& range) {
  absl::Status s = Validate(c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find(field), std::string::npos) << s;
  EXPECT_NE(s.message().find(range), std::string::npos) << s;
}

TEST(ValidateTest, DefaultsAreValid) {
  EXPECT_TRUE(Validate(TrainConfig{}).ok());
}

TEST(ValidateTest, OutOfRangeFieldsNameFieldAndRange) {
  TrainConfig c;
  c.alpha = -1;
  ExpectInvalid(c, "alpha", "[0, 10]");
  c = {};
  c.epsilon = 1;
  ExpectInvalid(c, "epsilon", "[0, 1)");
  c = {};
  c.label_noise = 1.0;
  ExpectInvalid(c, "label_noise", "[0, 1)");
  c = {};
  c.lr = 0;
  ExpectInvalid(c, "lr", "(0, 10]");
  c = {};
  c.epochs = 0;
  ExpectInvalid(c, "epochs", "[1, 10000]");
  c = {};
  c.ece_bins = 1001;
  ExpectInvalid(c, "ece_bins", "[1, 1000]");
  c = {};
  c.val_fraction = 0.6;
  ExpectInvalid(c, "val_fraction", "[0, 0.5]");
  c = {};
  c.alpha = std::nan("");
  ExpectInvalid(c, "alpha", "[0, 10]");
}

TEST(ValidateTest, ClassSubsetsAndHeldOutClasses) {
  TrainConfig c;
  c.classes = {0, 1, 2, 3, 4};
  EXPECT_TRUE(Validate(c).ok());
  c.ood_dataset = kHeldOutClasses;
  EXPECT_TRUE(Validate(c).ok());
  c.classes = {0, 10};
  ExpectInvalid(c, "classes[1]", "[0, 9]");
  c.classes = {4, 4};
  ExpectInvalid(c, "classes[1]", "distinct");
  c.classes = {7};
  ExpectInvalid(c, "classes", "2 to 10");
  // Held-out classes need some class left out.
  c.classes = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  ExpectInvalid(c, "held-out-classes", "leave out");
  c.classes = {};
  ExpectInvalid(c, "held-out-classes", "leave out");
  // The synthetic dataset's class count is its option; CIFAR-100 has 100.
  c = {};
  c.dataset = DatasetKind::kSynthetic;
  c.synthetic.classes = 3;
  c.classes = {0, 3};
  ExpectInvalid(c, "classes[1]", "[0, 2]");
  c = {};
  c.dataset = DatasetKind::kCifar100;
  c.data_dir = "/data/cifar100";
  c.classes = {0, 99};
  EXPECT_TRUE(Validate(c).ok());
}

TEST(ValidateTest, PredictionsModesAndTheirSizeLimit) {
  TrainConfig c;
  EXPECT_EQ(c.predictions, PredictionsMode::kFinal);
  EXPECT_TRUE(KeepsPredictions(c, c.epochs));
  EXPECT_FALSE(KeepsPredictions(c, 1));
  c.predictions = PredictionsMode::kEveryN;
  ExpectInvalid(c, "predictions_every", "[1, 10]");
  c.predictions_every = 4;
  EXPECT_TRUE(Validate(c).ok());
  EXPECT_TRUE(KeepsPredictions(c, 4));
  EXPECT_TRUE(KeepsPredictions(c, 10));
  EXPECT_FALSE(KeepsPredictions(c, 5));
  // 1,000 classes of 10,000 synthetic test examples: 10M values, too many.
  c = {};
  c.dataset = DatasetKind::kSynthetic;
  c.synthetic.classes = 1000;
  c.synthetic.test_count = 10000;
  ExpectInvalid(c, "predictions", "at most 2000000");
  c.test_limit = 2000;
  EXPECT_TRUE(Validate(c).ok());
  c.test_limit = 0;
  c.predictions = PredictionsMode::kNone;
  EXPECT_TRUE(Validate(c).ok());
}

TEST(ValidateTest, CrossFieldRules) {
  TrainConfig c;
  c.nesterov = true;
  c.momentum = 0;
  ExpectInvalid(c, "nesterov", "momentum");
  c = {};
  c.optimizer = OptimizerKind::kAdam;
  c.nesterov = true;
  ExpectInvalid(c, "nesterov", "sgd only");
  c = {};
  c.val_fraction = 0;
  ExpectInvalid(c, "temperature_scaling", "val_fraction");
  c = {};
  c.dataset = DatasetKind::kCifar10;
  ExpectInvalid(c, "data_dir", "cifar10");
  c = {};
  c.milestones = {5, 3};
  ExpectInvalid(c, "milestones", "[1, 10]");
  c = {};
  c.checkpoint_every = 2;
  ExpectInvalid(c, "checkpoint_dir", "checkpoint_every");
  c = {};
  c.device = "tpu";
  ExpectInvalid(c, "device", "cuda:N");
  c = {};
  c.ood_dataset = "imagenet";
  ExpectInvalid(c, "ood_dataset", "fashion-mnist|mnist");
  c = {};
  c.dataset = DatasetKind::kMnist;
  ExpectInvalid(c, "data_dir", "mnist");
  c.data_dir = "/data/mnist";
  EXPECT_TRUE(Validate(c).ok());
  c = {};
  c.ood_dataset = "cifar10";
  ExpectInvalid(c, "ood_data_dir", "cifar10");
}

TEST(ValidateTest, SyntheticRangesOnlyForSynthetic) {
  TrainConfig c;
  c.synthetic.classes = 1;
  EXPECT_TRUE(Validate(c).ok());  // not the synthetic dataset
  c.dataset = DatasetKind::kSynthetic;
  ExpectInvalid(c, "synthetic.classes", "[2, 1000]");
}

TEST(ParseTest, NamesRoundTripAndErrorsListChoices) {
  for (const char* n :
       {"fashion-mnist", "mnist", "cifar10", "cifar100", "synthetic"}) {
    absl::StatusOr<DatasetKind> d = ParseDataset(n);
    ASSERT_TRUE(d.ok()) << n;
    EXPECT_EQ(Name(*d), n);
  }
  EXPECT_EQ(*ParseMethod("ls"), MethodKind::kLabelSmoothing);
  EXPECT_EQ(*ParseMethod("MIXUP"), MethodKind::kMixup);
  absl::StatusOr<ModelKind> bad = ParseModel("resnet50", "--model");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(
                "--model must be one of mlp|lenet|resnet18|vgg16"),
            std::string::npos);
}

TEST(MilestonesTest, DefaultHalfAndThreeQuarters) {
  TrainConfig c;
  c.epochs = 200;
  EXPECT_EQ(EffectiveMilestones(c), (std::vector<int>{100, 150}));
  c.milestones = {60, 120, 160};
  EXPECT_EQ(EffectiveMilestones(c), (std::vector<int>{60, 120, 160}));
}

}  // namespace
}  // namespace mixcal::calib
