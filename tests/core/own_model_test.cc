// The researcher's own network (a TorchScript file) and data (.npz), made
// by examples/own-model/*.py with Debian's PyTorch 1.13 (/usr/bin/python3),
// trained by the core: every method, exact resume, token ids mixed as their
// embeddings, and a one-line reason for each thing a file can get wrong.

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/scratch_dir.h"
#include "worker/core/data.h"
#include "worker/core/trainer.h"

namespace mixcal::core {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class OwnModelTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = ::mixcal::testing::FreshTestDir("own"); }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Path(const std::string& name) { return (dir_ / name).string(); }

  // Runs examples/own-model/<script> with `args` and --out <name>.
  std::string Example(const std::string& script, const std::string& args,
                      const std::string& name) {
    const std::string cmd =
        absl::StrCat("/usr/bin/python3 " MIXCAL_EXAMPLES_DIR "/", script, " ",
                     args, " --out ", Path(name), " > /dev/null");
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    return Path(name);
  }
  // Runs `code` in NumPy with `path` bound to where the file goes.
  std::string Numpy(const std::string& name, const std::string& code) {
    const std::string script = Path("make.py");
    std::ofstream(script) << "import numpy as np\npath = '" << Path(name)
                          << "'\n"
                          << code << "\n";
    EXPECT_EQ(std::system(("/usr/bin/python3 " + script).c_str()), 0) << code;
    return Path(name);
  }

  calib::TrainConfig Config(const std::string& model, const std::string& data,
                            calib::MethodKind method) {
    calib::TrainConfig c;
    c.model = calib::ModelKind::kTorchScript;
    c.model_file = model;
    c.dataset = calib::DatasetKind::kNpz;
    c.data_file = data;
    c.method = method;
    c.alpha = 0.4;
    c.mixup_blocks = {0, 1};
    c.epochs = 2;
    c.batch_size = 32;
    c.threads = 1;
    c.predictions = calib::PredictionsMode::kNone;
    return c;
  }

  struct Run {
    absl::Status status;
    std::vector<EpochReport> epochs;
  };
  Run Train(const calib::TrainConfig& c) {
    Run r;
    TrainHooks hooks;
    hooks.on_epoch = [&](const EpochReport& e) {
      r.epochs.push_back(e);
      return absl::OkStatus();
    };
    r.status = NewTorchTrainer()->Run(c, hooks);
    return r;
  }

  fs::path dir_;
};

const SplitMetrics* Split(const EpochReport& e, const std::string& name) {
  for (const SplitMetrics& s : e.splits)
    if (s.split == name) return &s;
  return nullptr;
}

TEST_F(OwnModelTest, EveryMethodTrainsACnnWithBatchNormOnImagesFromAnNpz) {
  const std::string model =
      Example("make_model.py", "--kind cnn --channels 3 --classes 4 --width 8",
              "cnn.pt");
  const std::string data = Example(
      "make_data.py", "--images 200 --size 12 --channels 3", "img.npz");
  for (calib::MethodKind m :
       {calib::MethodKind::kBaseline, calib::MethodKind::kMixup,
        calib::MethodKind::kFeatureMixup, calib::MethodKind::kLabelSmoothing,
        calib::MethodKind::kErl, calib::MethodKind::kFocal,
        calib::MethodKind::kCutmix, calib::MethodKind::kRegmixup,
        calib::MethodKind::kMmce, calib::MethodKind::kManifoldMixup}) {
    SCOPED_TRACE(calib::Name(m));
    calib::TrainConfig c = Config(model, data, m);
    c.epochs = 1;
    c.noise_eval_count = 20;
    Run r = Train(c);
    ASSERT_TRUE(r.status.ok()) << r.status;
    ASSERT_EQ(r.epochs.size(), 1u);
    const SplitMetrics* test = Split(r.epochs[0], "test");
    ASSERT_NE(test, nullptr);
    EXPECT_EQ(test->count, 100);  // images(200) writes 100 test images
    EXPECT_GT(test->values.Get("accuracy").value_or(0), 0.0);
    EXPECT_TRUE(std::isfinite(test->values.Get("ece").value_or(NAN)));
    EXPECT_NE(Split(r.epochs[0], "test_ts"), nullptr);
    EXPECT_NE(Split(r.epochs[0], "noise"), nullptr);
  }
}

TEST_F(OwnModelTest, ResumingAModuleWithBatchNormAndDropoutIsExact) {
  const std::string model =
      Example("make_model.py", "--kind cnn --channels 3 --classes 4 --width 8",
              "cnn.pt");
  const std::string data = Example(
      "make_data.py", "--images 200 --size 12 --channels 3", "img.npz");
  calib::TrainConfig c = Config(model, data, calib::MethodKind::kMixup);
  c.epochs = 3;
  c.checkpoint_every = 1;
  c.checkpoint_dir = Path("ck");
  Run full = Train(c);
  ASSERT_TRUE(full.status.ok()) << full.status;
  c.checkpoint_every = 0;
  c.resume_from = Path("ck/checkpoint-epoch-00001.pt");
  Run resumed = Train(c);
  ASSERT_TRUE(resumed.status.ok()) << resumed.status;
  ASSERT_EQ(resumed.epochs.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const EpochReport& a = full.epochs[i + 1];
    const EpochReport& b = resumed.epochs[i];
    EXPECT_EQ(a.epoch, b.epoch);
    EXPECT_EQ(a.train_loss, b.train_loss);
    for (const char* split : {"test", "test_ts"}) {
      for (const char* metric : {"ece", "nll", "accuracy", "brier"}) {
        EXPECT_EQ(Split(a, split)->values.Get(metric),
                  Split(b, split)->values.Get(metric))
            << split << " " << metric << " epoch " << a.epoch;
      }
    }
  }
  // A checkpoint of another module is refused with the reason.
  const std::string other = Example(
      "make_model.py", "--kind cnn --channels 3 --classes 4 --width 4",
      "narrow.pt");
  calib::TrainConfig o = c;
  o.model_file = other;
  Run mismatch = Train(o);
  EXPECT_THAT(mismatch.status.message(), HasSubstr("was written by"));
}

TEST_F(OwnModelTest, TokenIdsAreMixedAsTheirEmbeddings) {
  const std::string model =
      Example("make_model.py", "--kind text --vocab 200 --classes 3", "text.pt");
  const std::string data = Example(
      "make_data.py", "--text --count 300 --length 12 --vocab 200 --classes 3",
      "text.npz");
  for (calib::MethodKind m :
       {calib::MethodKind::kMixup, calib::MethodKind::kRegmixup,
        calib::MethodKind::kManifoldMixup, calib::MethodKind::kBaseline}) {
    SCOPED_TRACE(calib::Name(m));
    calib::TrainConfig c = Config(model, data, m);
    c.noise_eval_count = 10;
    Run r = Train(c);
    ASSERT_TRUE(r.status.ok()) << r.status;
    ASSERT_EQ(r.epochs.size(), 2u);
    EXPECT_EQ(Split(r.epochs[1], "test")->count, 150);
    // The file's x_ood (60 rows) is the out-of-distribution split.
    ASSERT_NE(Split(r.epochs[1], "ood"), nullptr);
    EXPECT_EQ(Split(r.epochs[1], "ood")->count, 60);
  }
  Run cut = Train(Config(model, data, calib::MethodKind::kCutmix));
  EXPECT_EQ(cut.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(cut.status.message(), HasSubstr("cutmix pastes image boxes"));

  // A module without embed/forward_embedded cannot mix token ids.
  const std::string plain =
      Example("make_model.py", "--kind plain --channels 1 --size 12 --classes 3",
              "plain.pt");
  Run mix = Train(Config(plain, data, calib::MethodKind::kMixup));
  EXPECT_EQ(mix.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(mix.status.message(), HasSubstr("plain.pt"));
}

TEST_F(OwnModelTest, AFileThatIsWrongFailsWithOneLineNamingIt) {
  const std::string model =
      Example("make_model.py", "--kind cnn --channels 1 --classes 3 --width 4",
              "cnn.pt");
  const std::string good = Numpy("good.npz", R"(
rng = np.random.default_rng(0)
np.savez(path, x_train=rng.random((40, 8, 8), dtype=np.float32),
         y_train=np.arange(40) % 3, x_test=rng.random((10, 8, 8), dtype=np.float32),
         y_test=np.arange(10) % 3))");
  ASSERT_TRUE(Train(Config(model, good, calib::MethodKind::kBaseline)).status.ok());

  struct Case {
    std::string name, code, expected;
  };
  const std::vector<Case> bad_data = {
      {"label.npz", R"(
np.savez(path, x_train=np.zeros((40, 8, 8), np.uint8), y_train=np.arange(40) % 3,
         x_test=np.zeros((10, 8, 8), np.uint8), y_test=np.array([0,1,2,0,1,2,0,7,1,2])))",
       "data_file label.npz: y_test[7] is 7; labels must be 0..2 (y_train has 3 classes)"},
      {"negative.npz", R"(
y = np.arange(40) % 3; y[5] = -1
np.savez(path, x_train=np.zeros((40, 8, 8), np.uint8), y_train=y,
         x_test=np.zeros((10, 8, 8), np.uint8), y_test=np.arange(10) % 3))",
       "data_file negative.npz: y_train[5] is -1; labels must be 0..2"},
      {"missing.npz", R"(
np.savez(path, x_train=np.zeros((40, 8, 8), np.uint8), y_train=np.arange(40) % 3))",
       "data_file missing.npz: has no array x_test"},
      {"square.npz", R"(
np.savez(path, x_train=np.zeros((40, 3, 8, 3), np.uint8), y_train=np.arange(40) % 3,
         x_test=np.zeros((10, 3, 8, 3), np.uint8), y_test=np.arange(10) % 3))",
       "cannot tell its channels"},
      {"shape.npz", R"(
np.savez(path, x_train=np.zeros((40, 8, 8), np.uint8), y_train=np.arange(40) % 3,
         x_test=np.zeros((10, 9, 9), np.uint8), y_test=np.arange(10) % 3))",
       "every split needs the same example shape"},
  };
  for (const Case& k : bad_data) {
    SCOPED_TRACE(k.name);
    Run r = Train(Config(model, Numpy(k.name, k.code), calib::MethodKind::kBaseline));
    EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument) << r.status;
    EXPECT_THAT(r.status.message(), HasSubstr(k.expected));
    EXPECT_EQ(r.status.message().find('\n'), absl::string_view::npos);
    EXPECT_TRUE(r.epochs.empty());
  }

  // A model with 5 outputs for 3 classes, a truncated file, a file that is
  // not a zip at all, and a checkpoint of mixcal's own instead of a module.
  const std::string five = Example(
      "make_model.py", "--kind cnn --channels 1 --classes 5 --width 4", "five.pt");
  {
    std::ifstream in(model, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(Path("truncated.pt"), std::ios::binary)
        << bytes.substr(0, bytes.size() / 2);
    std::ofstream(Path("text.pt")) << "not a model\n";
  }
  const std::vector<std::pair<std::string, std::string>> bad_models = {
      {five, "model_file five.pt: forward(x) of a batch of 2 1x8x8 images gives "
             "CPUFloatType [2, 5]; the data has 3 classes"},
      {Path("truncated.pt"), "model_file truncated.pt: not a TorchScript file"},
      {Path("text.pt"), "model_file text.pt: not a TorchScript file"},
      {Path("absent.pt"), "model_file absent.pt: no such file"},
  };
  for (const auto& [file, expected] : bad_models) {
    SCOPED_TRACE(file);
    Run r = Train(Config(file, good, calib::MethodKind::kBaseline));
    EXPECT_FALSE(r.status.ok());
    EXPECT_THAT(r.status.message(), HasSubstr(expected));
    EXPECT_EQ(r.status.message().find('\n'), absl::string_view::npos);
    EXPECT_TRUE(r.epochs.empty());
  }
}

TEST_F(OwnModelTest, ReadsEveryImageLayoutAndTokenType) {
  const std::string path = Numpy("layouts.npz", R"(
nhwc = np.arange(4*6*5*3, dtype=np.uint8).reshape(4, 6, 5, 3)
np.savez(path, x_train=nhwc, y_train=np.array([0, 1, 1, 0]),
         x_test=np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2)),
         y_test=np.array([1, 0, 0, 1], dtype=np.int32)))");
  // x_test is NCHW [4, 3, 6, 5], x_train NHWC [4, 6, 5, 3]: the same images.
  absl::StatusOr<DataBundle> b = ReadNpz(path);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->channels, 3);
  EXPECT_EQ(b->height, 6);
  EXPECT_EQ(b->width, 5);
  EXPECT_EQ(b->classes, 2);
  EXPECT_TRUE(b->train.images.equal(b->test.images));
  // Pixel (n=1, c=2, h=3, w=4) of NHWC data is element ((1*6+3)*5+4)*3+2.
  EXPECT_EQ(b->train.images[1][2][3][4].item<int64_t>(),
            (((1 * 6 + 3) * 5 + 4) * 3 + 2) % 256);

  const std::string tokens = Numpy("tokens.npz", R"(
np.savez(path, x_train=np.array([[1, 2, 3], [4, 5, 9]], np.int32), y_train=np.array([0, 1]),
         x_test=np.array([[7, 7, 7]], np.int32), y_test=np.array([1])))");
  absl::StatusOr<DataBundle> t = ReadNpz(tokens);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_TRUE(t->tokens);
  EXPECT_EQ(t->length, 3);
  EXPECT_EQ(t->vocab, 10);
  EXPECT_EQ(t->train.images.scalar_type(), at::kLong);
}

TEST_F(OwnModelTest, AnImageFolderDecodesToTheImagesItWasWrittenFrom) {
  Example("make_data.py",
          "--images 60 --size 12 --channels 3 --as-image-folder", "folder");
  const std::string npz = Example(
      "make_data.py", "--images 60 --size 12 --channels 3", "same.npz");
  absl::StatusOr<DataBundle> f = ReadImageFolder(Path("folder"), 12, Path("cache"));
  ASSERT_TRUE(f.ok()) << f.status();
  absl::StatusOr<DataBundle> n = ReadNpz(npz);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(f->classes, n->classes);
  EXPECT_EQ(f->channels, 3);
  // The folder lists class by class, each in the arrays' order.
  at::Tensor order =
      std::get<1>(n->train.labels.sort(c10::optional<bool>(true), /*dim=*/0));
  EXPECT_TRUE(f->train.images.equal(n->train.images.index_select(0, order)));
  EXPECT_TRUE(f->train.labels.equal(n->train.labels.index_select(0, order)));
  EXPECT_EQ(f->test.size(), 30);
  // Decoded once: the next read comes from the cache file, the same.
  int cached = 0;
  for (const auto& e : fs::directory_iterator(Path("cache"))) {
    cached += e.path().filename().string().rfind("decoded-", 0) == 0;
  }
  EXPECT_EQ(cached, 1);
  absl::StatusOr<DataBundle> again =
      ReadImageFolder(Path("folder"), 12, Path("cache"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->train.images.equal(f->train.images));
  // Resized on request: 12x12 to 8x8.
  absl::StatusOr<DataBundle> small = ReadImageFolder(Path("folder"), 8, "");
  ASSERT_TRUE(small.ok()) << small.status();
  EXPECT_EQ(small->train.images.sizes(), (at::IntArrayRef{60, 3, 8, 8}));

  // A damaged file names itself; a test class train/ lacks is refused.
  std::ofstream(Path("folder/train/class_0/zz.jpg")) << "not a jpeg";
  absl::StatusOr<DataBundle> bad = ReadImageFolder(Path("folder"), 12, "");
  EXPECT_THAT(bad.status().message(), HasSubstr("zz.jpg: a damaged JPEG"));
  fs::remove(Path("folder/train/class_0/zz.jpg"));
  fs::create_directories(Path("folder/test/dog"));
  bad = ReadImageFolder(Path("folder"), 12, "");
  EXPECT_THAT(bad.status().message(),
              HasSubstr("test/dog is a class train/ does not have"));
}

}  // namespace
}  // namespace mixcal::core
