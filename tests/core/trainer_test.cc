// Real LibTorch training on tiny synthetic data, through the core's public,
// torch-free API.

#include "worker/core/trainer.h"

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/scratch_dir.h"
#include "calib/metrics.h"
#include "calib/predictions.h"

namespace mixcal::core {
namespace {

namespace fs = std::filesystem;

calib::TrainConfig TinyConfig() {
  calib::TrainConfig c;
  c.dataset = calib::DatasetKind::kSynthetic;
  c.synthetic.classes = 4;
  c.synthetic.size = 4;
  c.synthetic.train_count = 1024;
  c.synthetic.test_count = 512;
  c.synthetic.separation = 1.0;
  c.model = calib::ModelKind::kMlp;
  c.epochs = 3;
  c.batch_size = 64;
  c.lr = 0.05;
  c.threads = 1;
  c.seed = 1;
  return c;
}

struct RunResult {
  absl::Status status;
  std::vector<EpochReport> reports;
  std::vector<std::string> checkpoints;
};

RunResult RunTraining(const calib::TrainConfig& config,
                      const std::atomic<bool>* cancel = nullptr,
                      int cancel_after_epoch = 0,
                      std::atomic<bool>* cancel_flag = nullptr) {
  RunResult r;
  TrainHooks hooks;
  hooks.cancel = cancel;
  hooks.on_epoch = [&](const EpochReport& e) {
    r.reports.push_back(e);
    if (cancel_flag != nullptr && e.epoch == cancel_after_epoch)
      cancel_flag->store(true);
    return absl::OkStatus();
  };
  hooks.on_checkpoint = [&](int, const std::string& path) {
    r.checkpoints.push_back(path);
  };
  r.status = NewTorchTrainer()->Run(config, hooks);
  return r;
}

const SplitMetrics* FindSplit(const EpochReport& r, const std::string& name) {
  for (const SplitMetrics& m : r.splits)
    if (m.split == name) return &m;
  return nullptr;
}

// Exact equality of everything a run reports except timings.
void ExpectSameNumbers(const EpochReport& a, const EpochReport& b) {
  EXPECT_EQ(a.epoch, b.epoch);
  EXPECT_EQ(a.train_loss, b.train_loss);
  EXPECT_EQ(a.train_accuracy, b.train_accuracy);
  EXPECT_EQ(a.lr, b.lr);
  ASSERT_EQ(a.splits.size(), b.splits.size());
  for (size_t i = 0; i < a.splits.size(); ++i) {
    const SplitMetrics &x = a.splits[i], &y = b.splits[i];
    EXPECT_EQ(x.split, y.split);
    EXPECT_EQ(x.values.Get("accuracy").value(), y.values.Get("accuracy").value()) << x.split;
    EXPECT_EQ(x.values.Get("nll").value(), y.values.Get("nll").value()) << x.split;
    EXPECT_EQ(x.values.Get("brier").value(), y.values.Get("brier").value()) << x.split;
    EXPECT_EQ(x.values.Get("ece").value(), y.values.Get("ece").value()) << x.split;
    EXPECT_EQ(x.values.Get("mean_entropy").value(), y.values.Get("mean_entropy").value()) << x.split;
    EXPECT_EQ(x.values.Get("temperature"), y.values.Get("temperature")) << x.split;
  }
}

TEST(TrainerTest, LearnsSyntheticDataAndReportsEveryMetric) {
  calib::TrainConfig c = TinyConfig();
  c.noise_eval_count = 256;
  c.train_eval_count = 256;
  RunResult r = RunTraining(c);
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(r.reports.size(), 3u);
  const EpochReport& last = r.reports.back();
  const SplitMetrics* test = FindSplit(last, "test");
  ASSERT_NE(test, nullptr);
  EXPECT_GT(test->values.Get("accuracy").value(), 0.85);  // chance is 0.25
  EXPECT_EQ(test->count, 512);
  for (double v :
       {test->values.Get("nll").value(), test->values.Get("brier").value(), test->values.Get("ece").value(), test->values.Get("mce").value(), test->values.Get("oe").value(),
        test->values.Get("adaptive_ece").value(), test->values.Get("mean_confidence").value(), test->values.Get("mean_entropy").value(),
        last.train_loss, last.train_accuracy, last.lr, last.samples_per_sec}) {
    EXPECT_TRUE(std::isfinite(v));
  }
  EXPECT_GT(test->values.Get("mean_confidence").value(), 0.25);
  ASSERT_EQ(test->bins.size(), 15u);
  int64_t binned = 0;
  for (const calib::ReliabilityBin& b : test->bins) binned += b.count;
  EXPECT_EQ(binned, 512);
  // The bins are the source of truth: ECE/MCE/OE re-derive from them.
  calib::Calibration from_bins = CalibrationFromBins(test->bins);
  EXPECT_DOUBLE_EQ(from_bins.ece, test->values.Get("ece").value());
  EXPECT_DOUBLE_EQ(from_bins.mce, test->values.Get("mce").value());
  EXPECT_DOUBLE_EQ(from_bins.oe, test->values.Get("oe").value());

  const SplitMetrics* ts = FindSplit(last, "test_ts");
  ASSERT_NE(ts, nullptr);
  ASSERT_TRUE(ts->values.Get("temperature").has_value());
  EXPECT_GT(*ts->values.Get("temperature"), 0);
  EXPECT_EQ(ts->values.Get("accuracy").value(), test->values.Get("accuracy").value());  // scaling keeps the argmax
  ASSERT_NE(FindSplit(last, "train"), nullptr);
  const SplitMetrics* noise = FindSplit(last, "noise");
  ASSERT_NE(noise, nullptr);
  EXPECT_FALSE(noise->has_labels);
  ASSERT_TRUE(noise->values.Get("auroc").has_value());
  // The test split is the positive class. Gaussian noise in the normalised
  // space falls between the class clusters, where the network is less sure
  // than on test images: 0.72-0.80 over seeds 1-6 (0.78 for this one). An
  // AUROC with the classes swapped would be below 0.3.
  EXPECT_GT(*noise->values.Get("auroc"), 0.6);
  // Step schedule: milestones at epochs 1 and 2 of 3.
  EXPECT_DOUBLE_EQ(r.reports[0].lr, 0.05);
  EXPECT_NEAR(r.reports[2].lr, 0.0005, 1e-12);
}

TEST(TrainerTest, HeldOutClassesAreTheOutOfDistributionSplit) {
  calib::TrainConfig c = TinyConfig();  // 4 balanced classes, 512 test
  c.epochs = 2;
  c.classes = {2, 0};
  c.ood_dataset = calib::kHeldOutClasses;
  RunResult r = RunTraining(c);
  ASSERT_TRUE(r.status.ok()) << r.status;
  const EpochReport& last = r.reports.back();
  const SplitMetrics* test = FindSplit(last, "test");
  const SplitMetrics* ood = FindSplit(last, "ood");
  ASSERT_NE(test, nullptr);
  ASSERT_NE(ood, nullptr);
  // Two of four classes: half the test set is in distribution, the other
  // half (classes 1 and 3) is the OOD split.
  EXPECT_EQ(test->count, 256);
  EXPECT_EQ(ood->count, 256);
  EXPECT_FALSE(ood->has_labels);
  // A two-class network: top-label confidence is never below 1/2.
  EXPECT_GE(test->values.Get("mean_confidence").value(), 0.5);
  EXPECT_GE(ood->values.Get("mean_confidence").value(), 0.5);
  EXPECT_GT(test->values.Get("accuracy").value(), 0.85);
  // No direction here: classes 1 and 3 lie beyond the kept ones, where a
  // ReLU network is confident, so this AUROC falls on either side of 1/2
  // with the seed. (HeldOutClassAmongTheOthersIsLessConfident has one that
  // does not.)
  ASSERT_TRUE(ood->values.Get("auroc").has_value());
  EXPECT_GE(*ood->values.Get("auroc"), 0.0);
  EXPECT_LE(*ood->values.Get("auroc"), 1.0);
  // ood_count caps the split.
  c.ood_count = 100;
  r = RunTraining(c);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(FindSplit(r.reports.back(), "ood")->count, 100);
}

TEST(TrainerTest, HeldOutClassAmongTheOthersIsLessConfident) {
  calib::TrainConfig c = TinyConfig();
  c.epochs = 2;
  // Class 0's mean is the origin, which the other three surround: held out,
  // its images sit between the kept classes, where the network hesitates.
  c.classes = {1, 2, 3};
  c.ood_dataset = calib::kHeldOutClasses;
  RunResult r = RunTraining(c);
  ASSERT_TRUE(r.status.ok()) << r.status;
  const SplitMetrics* test = FindSplit(r.reports.back(), "test");
  const SplitMetrics* ood = FindSplit(r.reports.back(), "ood");
  ASSERT_NE(test, nullptr);
  ASSERT_NE(ood, nullptr);
  EXPECT_EQ(ood->count, 128);
  EXPECT_GT(test->values.Get("mean_confidence").value(), ood->values.Get("mean_confidence").value());
  // The test split is the positive class: 0.91-0.97 over seeds 1-6 (0.95
  // for this one); swapped, it would be below 0.1.
  ASSERT_TRUE(ood->values.Get("auroc").has_value());
  EXPECT_GT(*ood->values.Get("auroc"), 0.8);
}

TEST(TrainerTest, KeepsTestProbabilitiesAtTheChosenEpochs) {
  calib::TrainConfig c = TinyConfig();  // 3 epochs, 4 classes, 512 test
  RunResult r = RunTraining(c);         // default: the final epoch
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_TRUE(r.reports[0].predictions.empty());
  EXPECT_TRUE(r.reports[1].predictions.empty());
  ASSERT_EQ(r.reports[2].predictions.size(), 1u);
  const KeptPredictions& k = r.reports[2].predictions[0];
  EXPECT_EQ(k.split, "test");
  EXPECT_EQ(k.count, 512);
  EXPECT_EQ(k.classes, 4);
  auto probs = calib::DecodeProbabilities(k.probabilities, k.count, k.classes);
  auto labels = calib::DecodeLabels(k.labels, k.count, k.classes);
  ASSERT_TRUE(probs.ok() && labels.ok());
  // Rows are distributions (to float16's precision), and the metrics of the
  // kept probabilities are the reported ones (up to float16 rounding).
  for (int64_t i = 0; i < k.count; ++i) {
    double sum = 0;
    for (int j = 0; j < k.classes; ++j) sum += (*probs)[i * k.classes + j];
    ASSERT_NEAR(sum, 1.0, 4e-3) << i;
  }
  const calib::ProbabilityMetrics m =
      calib::MetricsOfProbabilities(*probs, *labels, k.classes, 15);
  const SplitMetrics* test = FindSplit(r.reports[2], "test");
  EXPECT_NEAR(m.accuracy, test->values.Get("accuracy").value(), 4.0 / 512);  // ties after rounding
  EXPECT_NEAR(m.nll, test->values.Get("nll").value(), 2e-3);
  EXPECT_NEAR(m.ece, test->values.Get("ece").value(), 5e-3);

  c.predictions = calib::PredictionsMode::kEveryN;
  c.predictions_every = 2;
  r = RunTraining(c);
  ASSERT_TRUE(r.status.ok());
  EXPECT_TRUE(r.reports[0].predictions.empty());
  EXPECT_EQ(r.reports[1].predictions.size(), 1u);  // epoch 2
  EXPECT_EQ(r.reports[2].predictions.size(), 1u);  // the last
  c.predictions = calib::PredictionsMode::kNone;
  r = RunTraining(c);
  ASSERT_TRUE(r.status.ok());
  for (const EpochReport& e : r.reports) EXPECT_TRUE(e.predictions.empty());
}

TEST(TrainerTest, EveryCalibratorReportsItsSplitWithItsParameters) {
  calib::TrainConfig c = TinyConfig();
  c.epochs = 1;
  c.calibrators = {calib::Calibrator::kVector, calib::Calibrator::kMatrix,
                   calib::Calibrator::kDirichlet, calib::Calibrator::kHistogram,
                   calib::Calibrator::kIsotonic, calib::Calibrator::kPlatt,
                   calib::Calibrator::kBeta};
  RunResult r = RunTraining(c);
  ASSERT_TRUE(r.status.ok()) << r.status;
  const EpochReport& e = r.reports[0];
  const SplitMetrics* ts = FindSplit(e, "test_ts");
  ASSERT_NE(ts, nullptr);
  EXPECT_NE(ts->calibration.find("\"T\":"), std::string::npos);
  for (const char* split : {"test_vs", "test_ms", "test_dir", "test_hist",
                            "test_iso", "test_platt", "test_beta"}) {
    const SplitMetrics* m = FindSplit(e, split);
    ASSERT_NE(m, nullptr) << split;
    EXPECT_EQ(m->count, 512) << split;
    EXPECT_NE(m->calibration.find("\"calibrator\""), std::string::npos) << split;
    EXPECT_GT(m->values.Get("accuracy").value(), 0.5) << split;
    EXPECT_TRUE(std::isfinite(m->values.Get("nll").value())) << split;
  }
  // Without temperature scaling there is no test_ts; the others stay.
  c.temperature_scaling = false;
  c.calibrators = {calib::Calibrator::kPlatt};
  r = RunTraining(c);
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(FindSplit(r.reports[0], "test_ts"), nullptr);
  EXPECT_NE(FindSplit(r.reports[0], "test_platt"), nullptr);
}

TEST(TrainerTest, SameSeedGivesSameNumbersOnCpu) {
  calib::TrainConfig c = TinyConfig();
  c.method = calib::MethodKind::kMixup;
  c.alpha = 0.4;
  RunResult a = RunTraining(c), b = RunTraining(c);
  ASSERT_TRUE(a.status.ok() && b.status.ok());
  for (size_t i = 0; i < a.reports.size(); ++i)
    ExpectSameNumbers(a.reports[i], b.reports[i]);
  c.seed = 2;
  RunResult other = RunTraining(c);
  EXPECT_NE(other.reports.back().train_loss, a.reports.back().train_loss);
}

TEST(TrainerTest, MixupWithAlphaZeroEqualsBaselineExactly) {
  calib::TrainConfig base = TinyConfig();
  calib::TrainConfig mix = base;
  mix.method = calib::MethodKind::kMixup;
  mix.alpha = 0;
  RunResult a = RunTraining(base), b = RunTraining(mix);
  ASSERT_TRUE(a.status.ok() && b.status.ok());
  ASSERT_EQ(a.reports.size(), b.reports.size());
  for (size_t i = 0; i < a.reports.size(); ++i)
    ExpectSameNumbers(a.reports[i], b.reports[i]);
  // And a real alpha changes the run.
  mix.alpha = 1.0;
  RunResult c = RunTraining(mix);
  EXPECT_NE(c.reports.back().train_loss, a.reports.back().train_loss);
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::mixcal::testing::FreshTestDir("ckpt");
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(CheckpointTest, ResumeGivesTheNumbersOfAnUninterruptedRun) {
  calib::TrainConfig c = TinyConfig();
  c.model = calib::ModelKind::kLenet;  // conv + pooling; momentum buffers matter
  c.synthetic.size = 12;
  c.method = calib::MethodKind::kMixup;
  c.alpha = 0.3;
  c.epochs = 4;
  c.checkpoint_every = 2;
  c.checkpoint_dir = (dir_ / "full").string();
  RunResult full = RunTraining(c);
  ASSERT_TRUE(full.status.ok()) << full.status;
  ASSERT_EQ(full.checkpoints.size(), 2u);
  ASSERT_TRUE(fs::exists(full.checkpoints[0]));

  calib::TrainConfig resumed = c;
  resumed.checkpoint_dir = (dir_ / "resumed").string();
  resumed.resume_from = full.checkpoints[0];  // after epoch 2
  RunResult rest = RunTraining(resumed);
  ASSERT_TRUE(rest.status.ok()) << rest.status;
  ASSERT_EQ(rest.reports.size(), 2u);
  ExpectSameNumbers(full.reports[2], rest.reports[0]);
  ExpectSameNumbers(full.reports[3], rest.reports[1]);
}

TEST_F(CheckpointTest, EveryNewMethodLearnsAndResumesExactly) {
  struct Case {
    calib::MethodKind method;
    double value;
  };
  for (const Case& k : {Case{calib::MethodKind::kFocal, 3.0},
                        Case{calib::MethodKind::kCutmix, 1.0},
                        Case{calib::MethodKind::kRegmixup, 1.0},
                        Case{calib::MethodKind::kMmce, 0.5},
                        Case{calib::MethodKind::kManifoldMixup, 1.0}}) {
    SCOPED_TRACE(calib::Name(k.method));
    calib::TrainConfig c = TinyConfig();
    c.model = calib::ModelKind::kLenet;  // images: CutMix cuts boxes
    c.synthetic.size = 12;
    c.method = k.method;
    *calib::HyperparameterField(c) = k.value;
    c.focal_schedule = calib::FocalSchedule::kFlsd53;
    c.epochs = 4;
    c.checkpoint_every = 2;
    const std::string name(calib::Name(k.method));
    c.checkpoint_dir = (dir_ / (name + "-full")).string();
    RunResult full = RunTraining(c);
    ASSERT_TRUE(full.status.ok()) << full.status;
    EXPECT_GT(FindSplit(full.reports.back(), "test")->values.Get("accuracy").value(), 0.5);  // chance: 0.25
    calib::TrainConfig resumed = c;
    resumed.checkpoint_dir = (dir_ / (name + "-resumed")).string();
    resumed.resume_from = full.checkpoints[0];  // after epoch 2
    RunResult rest = RunTraining(resumed);
    ASSERT_TRUE(rest.status.ok()) << rest.status;
    ASSERT_EQ(rest.reports.size(), 2u);
    ExpectSameNumbers(full.reports[2], rest.reports[0]);
    ExpectSameNumbers(full.reports[3], rest.reports[1]);
    // And the method is not the baseline: the training loss differs.
    calib::TrainConfig base = TinyConfig();
    base.model = calib::ModelKind::kLenet;
    base.synthetic.size = 12;
    base.epochs = 1;
    calib::TrainConfig one = c;
    one.epochs = 1;
    one.checkpoint_every = 0;
    one.checkpoint_dir.clear();
    EXPECT_NE(RunTraining(one).reports[0].train_loss,
              RunTraining(base).reports[0].train_loss);
  }
}

TEST_F(CheckpointTest, AdamLearnsAndResumesExactly) {
  calib::TrainConfig c = TinyConfig();
  c.optimizer = calib::OptimizerKind::kAdam;
  c.lr = 1e-3;
  c.epochs = 3;
  c.checkpoint_every = 1;
  c.checkpoint_dir = (dir_ / "adam").string();
  RunResult full = RunTraining(c);
  ASSERT_TRUE(full.status.ok()) << full.status;
  EXPECT_GT(FindSplit(full.reports.back(), "test")->values.Get("accuracy").value(), 0.85);
  calib::TrainConfig resumed = c;
  resumed.checkpoint_dir = (dir_ / "adam2").string();
  resumed.resume_from = full.checkpoints[0];
  RunResult rest = RunTraining(resumed);
  ASSERT_TRUE(rest.status.ok()) << rest.status;
  ASSERT_EQ(rest.reports.size(), 2u);
  ExpectSameNumbers(full.reports[1], rest.reports[0]);
  ExpectSameNumbers(full.reports[2], rest.reports[1]);
  // An SGD run may not resume an Adam checkpoint.
  calib::TrainConfig sgd = resumed;
  sgd.optimizer = calib::OptimizerKind::kSgd;
  EXPECT_EQ(RunTraining(sgd).status.code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(CheckpointTest, CheckpointOfAnotherConfigurationIsRefused) {
  calib::TrainConfig c = TinyConfig();
  c.epochs = 1;
  c.checkpoint_every = 1;
  c.checkpoint_dir = dir_.string();
  RunResult first = RunTraining(c);
  ASSERT_EQ(first.checkpoints.size(), 1u);
  calib::TrainConfig other = c;
  other.seed = 99;
  other.epochs = 2;
  other.resume_from = first.checkpoints[0];
  RunResult r = RunTraining(other);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kFailedPrecondition) << r.status;
  EXPECT_TRUE(r.reports.empty());

  other = c;
  other.resume_from = (dir_ / "missing.pt").string();
  r = RunTraining(other);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kNotFound) << r.status;
}

// Writes raw IDX files of random-ish 28x28 images for train and t10k.
void WriteIdxDataset(const fs::path& dir, int train, int test, int shift) {
  fs::create_directories(dir);
  auto be32 = [](std::ofstream& f, uint32_t v) {
    unsigned char b[4] = {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8),
                          uint8_t(v)};
    f.write(reinterpret_cast<char*>(b), 4);
  };
  for (auto [prefix, n] :
       {std::pair<const char*, int>{"train", train}, {"t10k", test}}) {
    std::ofstream img(dir / (std::string(prefix) + "-images-idx3-ubyte"),
                      std::ios::binary);
    be32(img, 0x803);
    be32(img, n);
    be32(img, 28);
    be32(img, 28);
    std::ofstream lab(dir / (std::string(prefix) + "-labels-idx1-ubyte"),
                      std::ios::binary);
    be32(lab, 0x801);
    be32(lab, n);
    for (int i = 0; i < n; ++i) {
      const int label = i % 10;
      lab.put(static_cast<char>(label));
      // Class-dependent brightness, so that the classes are learnable.
      for (int p = 0; p < 784; ++p)
        img.put(
            static_cast<char>((label * 20 + shift + (p * 7 + i) % 40) % 256));
    }
  }
}

TEST_F(CheckpointTest, OutOfDistributionDatasetGetsItsOwnSplit) {
  WriteIdxDataset(dir_ / "mnist", 300, 100, 0);
  WriteIdxDataset(dir_ / "other", 50, 60, 128);
  calib::TrainConfig c = TinyConfig();
  c.dataset = calib::DatasetKind::kMnist;
  c.data_dir = (dir_ / "mnist").string();
  c.model = calib::ModelKind::kLenet;
  c.epochs = 1;
  c.ood_dataset = "fashion-mnist";
  c.ood_data_dir = (dir_ / "other").string();
  c.ood_count = 40;
  RunResult r = RunTraining(c);
  ASSERT_TRUE(r.status.ok()) << r.status;
  const SplitMetrics* ood = FindSplit(r.reports[0], "ood");
  ASSERT_NE(ood, nullptr);
  EXPECT_EQ(ood->count, 40);
  EXPECT_FALSE(ood->has_labels);
  ASSERT_TRUE(ood->values.Get("auroc").has_value());

  // OOD data of another shape is refused, naming both shapes.
  c.dataset = calib::DatasetKind::kSynthetic;
  r = RunTraining(c);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument) << r.status;
  EXPECT_NE(r.status.message().find("1x28x28"), std::string::npos) << r.status;
}

TEST(TrainerTest, CancellationStopsBetweenBatches) {
  std::atomic<bool> cancel{true};
  RunResult before = RunTraining(TinyConfig(), &cancel);
  EXPECT_EQ(before.status.code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(before.reports.empty());

  std::atomic<bool> later{false};
  RunResult after_one = RunTraining(TinyConfig(), &later, 1, &later);
  EXPECT_EQ(after_one.status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(after_one.reports.size(), 1u);
  EXPECT_NE(after_one.status.message().find("epoch 2, batch 0"),
            std::string::npos)
      << after_one.status;
}

TEST(TrainerTest, CallbackErrorStopsTraining) {
  TrainHooks hooks;
  int calls = 0;
  hooks.on_epoch = [&](const EpochReport&) {
    ++calls;
    return absl::UnavailableError("store down");
  };
  absl::Status s = NewTorchTrainer()->Run(TinyConfig(), hooks);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(calls, 1);
}

TEST(TrainerTest, InvalidConfigFailsBeforeAnyWork) {
  calib::TrainConfig c = TinyConfig();
  c.alpha = -1;
  RunResult r = RunTraining(c);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status.message().find("alpha must be in [0, 10]"),
            std::string::npos);
  EXPECT_TRUE(r.reports.empty());
}

TEST(TrainerTest, MissingDatasetIsAnErrorNamingThePath) {
  calib::TrainConfig c = TinyConfig();
  c.dataset = calib::DatasetKind::kFashionMnist;
  c.data_dir = "/nonexistent/fmnist";
  RunResult r = RunTraining(c);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(r.status.message().find("/nonexistent/fmnist"), std::string::npos);
}

TEST(TrainerTest, DivergenceIsAnErrorNotGarbage) {
  calib::TrainConfig c = TinyConfig();
  c.synthetic.separation = 100;
  c.lr = 10;
  c.weight_decay = 0;
  c.schedule = calib::Schedule::kConstant;
  RunResult r = RunTraining(c);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInternal) << r.status;
  EXPECT_NE(r.status.message().find("diverged"), std::string::npos) << r.status;
}

TEST(TrainerTest, CudaDeviceWithoutCudaIsAClearError) {
  if (CudaAvailable()) GTEST_SKIP() << "CUDA present";
  calib::TrainConfig c = TinyConfig();
  c.device = "cuda:0";
  RunResult r = RunTraining(c);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status.message().find("cuda:0"), std::string::npos);
}

struct ModelMethod {
  calib::ModelKind model;
  calib::MethodKind method;
};

class EveryModelAndMethodTest : public ::testing::TestWithParam<ModelMethod> {};

TEST_P(EveryModelAndMethodTest, TrainsOneEpochOnImages) {
  calib::TrainConfig c = TinyConfig();
  c.synthetic.channels = 3;
  c.synthetic.size = 16;
  c.synthetic.train_count = 128;
  c.synthetic.test_count = 64;
  c.model = GetParam().model;
  c.method = GetParam().method;
  c.augment = calib::Augment::kCropFlip;
  c.alpha = 0.4;
  c.label_noise = 0.1;
  c.epochs = 1;
  RunResult r = RunTraining(c);
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(r.reports.size(), 1u);
  EXPECT_TRUE(std::isfinite(r.reports[0].train_loss));
  ASSERT_NE(FindSplit(r.reports[0], "test_ts"), nullptr);
}

INSTANTIATE_TEST_SUITE_P(
    Grid, EveryModelAndMethodTest,
    ::testing::Values(ModelMethod{calib::ModelKind::kMlp, calib::MethodKind::kFeatureMixup},
                      ModelMethod{calib::ModelKind::kLenet,
                                  calib::MethodKind::kLabelSmoothing},
                      ModelMethod{calib::ModelKind::kResnet18, calib::MethodKind::kMixup},
                      ModelMethod{calib::ModelKind::kVgg16, calib::MethodKind::kErl}),
    [](const auto& info) {
      return std::string(Name(info.param.model)) + "_" +
             std::string(Name(info.param.method));
    });

}  // namespace
}  // namespace mixcal::core
