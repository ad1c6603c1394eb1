#include "spec/spec.h"

#include <fstream>
#include <sstream>
#include <string>

#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace mixcal::spec {
namespace {

v1::SweepSpec Small() {
  v1::SweepSpec s;
  s.set_name("small");
  s.mutable_data()->set_dataset("synthetic");
  s.set_model("mlp");
  s.mutable_training()->set_epochs(3);
  s.add_methods()->set_name("baseline");
  v1::MethodSpec* m = s.add_methods();
  m->set_name("mixup");
  m->add_values(0.2);
  m->add_values(0.4);
  s.add_seeds(0);
  s.add_seeds(1);
  return s;
}

void ExpectInvalid(const v1::SweepSpec& s, const std::string& field,
                   const std::string& range) {
  absl::Status st = ValidateSweepSpec(s);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_NE(st.message().find(field), std::string::npos) << st;
  EXPECT_NE(st.message().find(range), std::string::npos) << st;
}

TEST(SpecTest, SmallSpecIsValidAndExpandsInFixedOrder) {
  ASSERT_TRUE(ValidateSweepSpec(Small()).ok()) << ValidateSweepSpec(Small());
  std::vector<JobSpec> jobs = ExpandSweep(Small());
  ASSERT_EQ(jobs.size(), 6u);  // (1 + 2 values) x 2 seeds
  const std::vector<std::tuple<std::string, double, uint64_t>> expected = {
      {"baseline", 0, 0}, {"baseline", 0, 1}, {"mixup", 0.2, 0},
      {"mixup", 0.2, 1},  {"mixup", 0.4, 0},  {"mixup", 0.4, 1}};
  for (size_t i = 0; i < jobs.size(); ++i) {
    EXPECT_EQ(std::make_tuple(jobs[i].method, jobs[i].value, jobs[i].seed),
              expected[i])
        << i;
    EXPECT_EQ(jobs[i].config.seed(), jobs[i].seed);
    EXPECT_EQ(jobs[i].config.value(), jobs[i].value);
    EXPECT_EQ(jobs[i].config.training().epochs(), 3u);
  }
}

TEST(SpecTest, ErrorsNameTheFieldValueAndRange) {
  v1::SweepSpec s = Small();
  s.mutable_methods(1)->set_values(1, -1);
  ExpectInvalid(s, "methods[1].values[1]", "alpha must be in [0, 10], got -1");

  s = Small();
  s.mutable_training()->set_lr(0);
  ExpectInvalid(s, "lr", "(0, 10]");

  s = Small();
  s.set_name("");
  ExpectInvalid(s, "name", "1 to 128");

  s = Small();
  s.set_device("tpu");
  ExpectInvalid(s, "device", "cpu|cuda|any");

  s = Small();
  s.set_priority(101);
  ExpectInvalid(s, "priority", "[-100, 100]");

  s = Small();
  s.set_max_attempts(21);
  ExpectInvalid(s, "max_attempts", "[1, 20]");

  s = Small();
  s.add_seeds(1);
  ExpectInvalid(s, "seeds[2]", "distinct");

  s = Small();
  s.mutable_methods(0)->add_values(0.1);
  ExpectInvalid(s, "methods[0].values", "empty for baseline");

  s = Small();
  s.mutable_methods(1)->clear_values();
  ExpectInvalid(s, "methods[1].values", "1 to 64");

  s = Small();
  s.mutable_methods(1)->set_name("cutout");
  ExpectInvalid(s, "methods[1].name", "baseline|mixup");

  s = Small();
  s.add_methods()->set_name("baseline");
  ExpectInvalid(s, "methods[2]", "each (method, value) may appear once");

  s = Small();
  s.mutable_data()->set_dataset("cifar10");
  ExpectInvalid(s, "data_dir", "cifar10");

  s = Small();
  s.mutable_training()->set_optimizer("rmsprop");
  ExpectInvalid(s, "training.optimizer", "sgd|adam");
  s.mutable_training()->set_optimizer("adam");
  EXPECT_TRUE(ValidateSweepSpec(s).ok()) << ValidateSweepSpec(s);

  s = Small();
  s.mutable_evaluation()->set_ece_bins(5000);
  ExpectInvalid(s, "ece_bins", "[1, 1000]");
}

TEST(SpecTest, AcceptedSpecsAreOnesAWorkerCanTrain) {
  // mnist has no default directory: refused here, not on the worker.
  v1::SweepSpec s = Small();
  s.mutable_data()->set_dataset("mnist");
  ExpectInvalid(s, "data_dir", "mnist");
  s.mutable_data()->set_data_dir("/data/mnist");
  EXPECT_TRUE(ValidateSweepSpec(s).ok()) << ValidateSweepSpec(s);
}

TEST(SpecTest, StringsMustBeValidUtf8WithoutNul) {
  v1::SweepSpec s = Small();
  s.mutable_data()->set_data_dir(std::string("/data\0/x", 8));
  ExpectInvalid(s, "data.data_dir", "NUL");
  s = Small();
  s.mutable_evaluation()->set_ood_data_dir(std::string("/ood\0", 5));
  ExpectInvalid(s, "evaluation.ood_data_dir", "NUL");
  s = Small();
  s.set_name("caf\xC3");  // cut in the middle of a character
  ExpectInvalid(s, "name", "UTF-8");
  s = Small();
  s.set_request_id("\xFF\xFE");
  ExpectInvalid(s, "request_id", "UTF-8");
  // A huge bad value is not echoed back in full.
  s = Small();
  s.set_device(std::string(100000, 'x'));
  absl::Status st = ValidateSweepSpec(s);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(st.message().size(), 300u) << st.message().size();
  // Multi-byte names are fine.
  s = Small();
  s.set_name("fmnist-\xC3\xA9t\xC3\xA9");
  EXPECT_TRUE(ValidateSweepSpec(s).ok()) << ValidateSweepSpec(s);
}

TEST(SpecTest, SizeLimits) {
  v1::SweepSpec s = Small();
  s.clear_seeds();
  for (int i = 0; i < 1000; ++i) s.add_seeds(i);
  // (1 + 2) x 1000 = 3000 jobs: fine.
  EXPECT_TRUE(ValidateSweepSpec(s).ok());
  for (int i = 0; i < 10; ++i) s.mutable_methods(1)->add_values(1.0 + i);
  // (1 + 12) x 1000 = 13000 jobs: too many.
  ExpectInvalid(s, "methods", "at most 10000");
  s.add_seeds(5000);
  ExpectInvalid(s, "seeds", "1 to 1000");
  s = Small();
  s.set_request_id(std::string(129, 'x'));
  ExpectInvalid(s, "request_id", "at most 128");
}

TEST(SpecTest, ToTrainConfigAppliesDefaultsAndValues) {
  std::vector<JobSpec> jobs = ExpandSweep(Small());
  absl::StatusOr<calib::TrainConfig> c = ToTrainConfig(jobs[4].config);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->method, calib::MethodKind::kMixup);
  EXPECT_EQ(c->alpha, 0.4);
  EXPECT_EQ(c->seed, 0u);
  EXPECT_EQ(c->epochs, 3);
  EXPECT_EQ(c->model, calib::ModelKind::kMlp);
  EXPECT_EQ(c->dataset, calib::DatasetKind::kSynthetic);
  EXPECT_EQ(c->batch_size, 128);           // default
  EXPECT_DOUBLE_EQ(c->val_fraction, 0.1);  // default
  EXPECT_EQ(c->checkpoint_every, 1);       // the spec default
  EXPECT_TRUE(c->temperature_scaling);

  v1::JobConfig j = jobs[0].config;
  j.mutable_data()->set_val_fraction(0);  // explicitly no validation split
  c = ToTrainConfig(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->temperature_scaling);
}

TEST(SpecTest, NormalizedFillsDefaultsSoEqualSpecsCompareEqual) {
  v1::SweepSpec a = Small();
  a.clear_seeds();
  v1::SweepSpec b = a;
  b.add_seeds(0);
  b.set_device("any");
  b.mutable_methods(1)->set_name("MIXUP");
  EXPECT_EQ(Normalized(a).SerializeAsString(),
            Normalized(b).SerializeAsString());
}

TEST(SpecTest, ExampleSpecFilesParseAndValidate) {
  for (const char* name :
       {"mixup-fashion-mnist.json", "mixup-cifar100-vgg16.json",
        "quickstart.json", "quickstart-full-data.json",
        "papers/thulasidasan-fmnist.json",
        "papers/thulasidasan-cifar10-resnet18-alpha.json",
        "papers/thulasidasan-unknown-classes.json",
        "papers/label-noise-fmnist.json", "papers/chidambaram-overlap.json"}) {
    std::ifstream in(std::string(MIXCAL_SOURCE_DIR) + "/examples/" + name);
    ASSERT_TRUE(in) << name;
    std::stringstream text;
    text << in.rdbuf();
    v1::SweepSpec spec;
    auto st = google::protobuf::util::JsonStringToMessage(text.str(), &spec);
    ASSERT_TRUE(st.ok()) << name << ": " << st.ToString();
    EXPECT_TRUE(ValidateSweepSpec(spec).ok())
        << name << ": " << ValidateSweepSpec(spec);
  }
}

TEST(SpecTest, OwnModelSpecsValidateOnceTheirFilesAreHashes) {
  // mixcal submit uploads modelFile and dataFile and puts their hashes in.
  for (const char* name : {"own-model/spec.json", "own-model/spec-text.json"}) {
    std::ifstream in(std::string(MIXCAL_SOURCE_DIR) + "/examples/" + name);
    ASSERT_TRUE(in) << name;
    std::stringstream text;
    text << in.rdbuf();
    v1::SweepSpec spec;
    auto st = google::protobuf::util::JsonStringToMessage(text.str(), &spec);
    ASSERT_TRUE(st.ok()) << name << ": " << st.ToString();
    EXPECT_FALSE(spec.model_file().empty());
    EXPECT_EQ(ValidateSweepSpec(spec).message().substr(0, 54),
              "model_file must be the SHA-256 of an uploaded file (64");
    spec.set_model_file(std::string(64, 'a'));
    spec.mutable_data()->set_data_file(std::string(64, 'b'));
    EXPECT_TRUE(ValidateSweepSpec(spec).ok()) << name << ": "
                                             << ValidateSweepSpec(spec);
    const v1::SweepSpec n = Normalized(spec);
    EXPECT_EQ(n.model(), "torchscript");
    EXPECT_EQ(n.data().dataset(), "npz");
    const std::vector<JobSpec> jobs = ExpandSweep(spec);
    ASSERT_FALSE(jobs.empty());
    EXPECT_EQ(jobs[0].config.model_file(), std::string(64, 'a'));
    absl::StatusOr<calib::TrainConfig> c = ToTrainConfig(jobs[0].config);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(c->model_file, "sha256:" + std::string(64, 'a'));
    EXPECT_EQ(c->data_file, "sha256:" + std::string(64, 'b'));
  }
}

TEST(SpecTest, OwnDataIsNamedOnceAndNeedsItsModel) {
  v1::SweepSpec spec;
  spec.set_name("own");
  spec.add_methods()->set_name("baseline");
  spec.mutable_data()->set_data_file(std::string(64, 'b'));
  spec.mutable_data()->set_data_path("/data/x.npz");
  EXPECT_EQ(ValidateSweepSpec(spec).message(),
            "data.data_file and data.data_path name the data twice; give one "
            "(data_file: an uploaded .npz; data_path: a path on the workers)");
  spec.mutable_data()->clear_data_file();
  EXPECT_TRUE(ValidateSweepSpec(spec).ok()) << ValidateSweepSpec(spec);
  spec.set_model("mlp");
  spec.set_model_file(std::string(64, 'a'));
  EXPECT_EQ(ValidateSweepSpec(spec).message(),
            "model_file applies to model torchscript, got model mlp");
  spec.set_model("torchscript");
  spec.clear_model_file();
  EXPECT_EQ(ValidateSweepSpec(spec).message(),
            "model_file is required for model torchscript: the TorchScript "
            "file");
  spec.set_model("lenet");
  spec.mutable_data()->set_dataset("fashion-mnist");
  EXPECT_EQ(ValidateSweepSpec(spec).message(),
            "data_file applies to dataset npz or image-folder, got dataset "
            "fashion-mnist");
  spec.mutable_data()->set_dataset("image-folder");
  spec.mutable_data()->set_image_size(2);
  EXPECT_EQ(ValidateSweepSpec(spec).message(),
            "image_size must be in [4, 512], got 2");
}

}  // namespace
}  // namespace mixcal::spec
