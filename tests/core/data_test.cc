// Dataset readers on small generated IDX and CIFAR files, corrupt and
// truncated ones included; label noise; the train/validation split.

#include "worker/core/data.h"

#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/scratch_dir.h"

namespace mixcal::core {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> Be32(uint32_t v) {
  return {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)};
}

std::vector<uint8_t> IdxImages(int n, int rows, int cols) {
  std::vector<uint8_t> out = Be32(0x803);
  for (uint32_t d : {uint32_t(n), uint32_t(rows), uint32_t(cols)}) {
    auto b = Be32(d);
    out.insert(out.end(), b.begin(), b.end());
  }
  for (int i = 0; i < n * rows * cols; ++i) out.push_back(uint8_t(i % 251));
  return out;
}

std::vector<uint8_t> IdxLabels(int n) {
  std::vector<uint8_t> out = Be32(0x801);
  auto b = Be32(n);
  out.insert(out.end(), b.begin(), b.end());
  for (int i = 0; i < n; ++i) out.push_back(uint8_t((i * 7) % 10));
  return out;
}

class DataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::mixcal::testing::FreshTestDir("data_test");
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name,
                    const std::vector<uint8_t>& bytes) {
    std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    return path;
  }
  std::string WriteGz(const std::string& name,
                      const std::vector<uint8_t>& bytes) {
    std::string path = (dir_ / name).string();
    gzFile f = gzopen(path.c_str(), "wb");
    gzwrite(f, bytes.data(), bytes.size());
    gzclose(f);
    return path;
  }

  fs::path dir_;
};

TEST_F(DataTest, ReadsGzipAndRawIdxAlike) {
  auto images = IdxImages(6, 5, 4);
  auto labels = IdxLabels(6);
  absl::StatusOr<TensorDataset> gz =
      ReadIdx(WriteGz("i.gz", images), WriteGz("l.gz", labels), 10);
  absl::StatusOr<TensorDataset> raw =
      ReadIdx(Write("i", images), Write("l", labels), 10);
  ASSERT_TRUE(gz.ok()) << gz.status();
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_EQ(gz->images.sizes(), (std::vector<int64_t>{6, 1, 5, 4}));
  EXPECT_TRUE(gz->images.equal(raw->images));
  EXPECT_TRUE(gz->labels.equal(raw->labels));
  // Pixel (2, 0, 1, 3) is byte 2*20 + 1*4 + 3 = 47 of the data.
  EXPECT_EQ(gz->images[2][0][1][3].item<int>(), 47);
  EXPECT_EQ(gz->labels[3].item<int64_t>(), 1);  // 21 % 10
}

TEST_F(DataTest, MissingFileNamesThePath) {
  std::string labels = Write("l", IdxLabels(3));
  absl::StatusOr<TensorDataset> r =
      ReadIdx((dir_ / "nope.gz").string(), labels, 10);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find((dir_ / "nope.gz").string()),
            std::string::npos);
}

TEST_F(DataTest, BadMagicIsMalformed) {
  auto images = IdxImages(3, 2, 2);
  images[3] = 0x02;  // a 2-dimensional file
  std::string path = Write("i", images);
  absl::StatusOr<TensorDataset> r = ReadIdx(path, Write("l", IdxLabels(3)), 10);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find(path), std::string::npos);
  EXPECT_NE(r.status().message().find("magic"), std::string::npos);
}

TEST_F(DataTest, TruncatedRawAndGzipFilesSayTruncated) {
  auto images = IdxImages(4, 3, 3);
  images.resize(images.size() - 5);
  for (bool gz : {false, true}) {
    std::string path = gz ? WriteGz("i.gz", images) : Write("i", images);
    absl::StatusOr<TensorDataset> r =
        ReadIdx(path, Write("l", IdxLabels(4)), 10);
    ASSERT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << gz;
    EXPECT_NE(r.status().message().find("truncated"), std::string::npos)
        << r.status();
    EXPECT_NE(r.status().message().find(path), std::string::npos);
  }
}

TEST_F(DataTest, CorruptGzipStreamIsAnError) {
  // A valid gzip header followed by garbage deflate data.
  std::string good = WriteGz("i.gz", IdxImages(50, 8, 8));
  std::ifstream in(good, std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
  for (size_t i = 20; i < bytes.size() - 8; ++i) bytes[i] ^= 0x5a;
  std::string bad = Write("bad.gz", bytes);
  absl::StatusOr<TensorDataset> r = ReadIdx(bad, Write("l", IdxLabels(50)), 10);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
  EXPECT_NE(r.status().message().find(bad), std::string::npos);
}

TEST_F(DataTest, CountMismatchAndLabelOutOfRange) {
  absl::StatusOr<TensorDataset> r =
      ReadIdx(Write("i", IdxImages(4, 2, 2)), Write("l", IdxLabels(5)), 10);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("4 images but"), std::string::npos)
      << r.status();
  auto labels = IdxLabels(4);
  labels.back() = 12;
  r = ReadIdx(Write("i2", IdxImages(4, 2, 2)), Write("l2", labels), 10);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("label 12 at index 3"), std::string::npos)
      << r.status();
}

TEST_F(DataTest, TrailingBytesAreMalformed) {
  auto labels = IdxLabels(4);
  labels.push_back(1);
  absl::StatusOr<TensorDataset> r =
      ReadIdx(Write("i", IdxImages(4, 2, 2)), Write("l", labels), 10);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(DataTest, LoadsFashionMnistLayoutFromDirectory) {
  WriteGz("train-images-idx3-ubyte.gz", IdxImages(20, 28, 28));
  WriteGz("train-labels-idx1-ubyte.gz", IdxLabels(20));
  Write("t10k-images-idx3-ubyte", IdxImages(10, 28, 28));  // raw works too
  Write("t10k-labels-idx1-ubyte", IdxLabels(10));
  absl::StatusOr<DataBundle> b =
      LoadDataset(calib::DatasetKind::kMnist, dir_.string(), {}, 0);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->train.size(), 20);
  EXPECT_EQ(b->test.size(), 10);
  EXPECT_EQ(b->classes, 10);
  EXPECT_EQ(b->height, 28);
}

TEST_F(DataTest, MissingDatasetDirectoryNamesIt) {
  absl::StatusOr<DataBundle> b = LoadDataset(calib::DatasetKind::kFashionMnist,
                                             (dir_ / "absent").string(), {}, 0);
  ASSERT_EQ(b.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(b.status().message().find("absent"), std::string::npos);
}

std::vector<uint8_t> CifarRecords(int n, int label_bytes, int classes) {
  std::vector<uint8_t> out;
  for (int i = 0; i < n; ++i) {
    if (label_bytes == 2) out.push_back(uint8_t(i % 20));  // coarse label
    out.push_back(uint8_t(i % classes));
    for (int p = 0; p < 3072; ++p) out.push_back(uint8_t((i + p) % 256));
  }
  return out;
}

TEST_F(DataTest, ReadsCifar10Binary) {
  fs::create_directories(dir_ / "cifar-10-batches-bin");
  for (int i = 1; i <= 5; ++i)
    Write("cifar-10-batches-bin/data_batch_" + std::to_string(i) + ".bin",
          CifarRecords(3, 1, 10));
  Write("cifar-10-batches-bin/test_batch.bin", CifarRecords(4, 1, 10));
  absl::StatusOr<DataBundle> b =
      LoadDataset(calib::DatasetKind::kCifar10, dir_.string(), {}, 0);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->train.size(), 15);
  EXPECT_EQ(b->test.size(), 4);
  EXPECT_EQ(b->train.images.sizes(), (std::vector<int64_t>{15, 3, 32, 32}));
  EXPECT_EQ(b->test.labels[3].item<int64_t>(), 3);
  // Record 2's byte p is (2 + p) % 256; channel 1, row 0, col 5 is p = 1029.
  EXPECT_EQ(b->test.images[2][1][0][5].item<int>(), (2 + 1029) % 256);
}

TEST_F(DataTest, ReadsCifar100FineLabels) {
  Write("train.bin", CifarRecords(5, 2, 100));
  Write("test.bin", CifarRecords(3, 2, 100));
  absl::StatusOr<DataBundle> b =
      LoadDataset(calib::DatasetKind::kCifar100, dir_.string(), {}, 0);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->classes, 100);
  EXPECT_EQ(b->train.labels[4].item<int64_t>(), 4);
}

TEST_F(DataTest, TruncatedCifarNamesRecordSize) {
  Write("train.bin", CifarRecords(5, 2, 100));
  auto test = CifarRecords(3, 2, 100);
  test.resize(test.size() - 100);
  std::string path = Write("test.bin", test);
  absl::StatusOr<DataBundle> b =
      LoadDataset(calib::DatasetKind::kCifar100, dir_.string(), {}, 0);
  ASSERT_EQ(b.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(b.status().message().find(path), std::string::npos);
  EXPECT_NE(b.status().message().find("3074-byte"), std::string::npos)
      << b.status();
}

TEST_F(DataTest, MissingCifarBatchNamesIt) {
  Write("data_batch_1.bin", CifarRecords(2, 1, 10));
  absl::StatusOr<DataBundle> b =
      LoadDataset(calib::DatasetKind::kCifar10, dir_.string(), {}, 0);
  ASSERT_EQ(b.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(b.status().message().find("data_batch_2.bin"), std::string::npos);
}

TEST(LabelNoiseTest, PairNoiseHitsRateDeterministicallyToOneClass) {
  const int n = 100000;
  at::Tensor labels = at::arange(n, at::kLong).remainder(10);
  at::Tensor a = ApplyLabelNoise(labels, 10, 0.3, calib::NoiseKind::kPair, 7);
  at::Tensor b = ApplyLabelNoise(labels, 10, 0.3, calib::NoiseKind::kPair, 7);
  at::Tensor c = ApplyLabelNoise(labels, 10, 0.3, calib::NoiseKind::kPair, 8);
  EXPECT_TRUE(a.equal(b));
  EXPECT_FALSE(a.equal(c));
  double rate = a.ne(labels).to(at::kDouble).mean().item<double>();
  EXPECT_NEAR(rate, 0.3, 0.01);
  // Each class flips to exactly one other class.
  for (int cls = 0; cls < 10; ++cls) {
    at::Tensor flipped = a.masked_select(labels.eq(cls) & a.ne(labels));
    at::Tensor targets = std::get<0>(at::_unique(flipped));
    ASSERT_EQ(targets.numel(), 1) << "class " << cls;
    EXPECT_NE(targets.item<int64_t>(), cls);
  }
}

TEST(LabelNoiseTest, SymmetricNoiseSpreadsOverOtherClasses) {
  const int n = 100000;
  at::Tensor labels = at::zeros({n}, at::kLong);
  at::Tensor a = ApplyLabelNoise(labels, 5, 0.2, calib::NoiseKind::kSymmetric, 1);
  EXPECT_NEAR(a.ne(0).to(at::kDouble).mean().item<double>(), 0.2, 0.01);
  for (int cls = 1; cls < 5; ++cls)
    EXPECT_NEAR(a.eq(cls).to(at::kDouble).mean().item<double>(), 0.05, 0.005);
  EXPECT_TRUE(
      ApplyLabelNoise(labels, 5, 0.0, calib::NoiseKind::kSymmetric, 1).equal(labels));
}

TEST(SplitTest, DisjointDeterministicAndLimited) {
  TensorDataset d{at::arange(1000, at::kLong).view({1000, 1, 1, 1}),
                  at::arange(1000, at::kLong).remainder(10)};
  TrainValSplit a = SplitTrainVal(d, 0.1, 0, 3);
  TrainValSplit b = SplitTrainVal(d, 0.1, 0, 3);
  EXPECT_EQ(a.val.size(), 100);
  EXPECT_EQ(a.train.size(), 900);
  EXPECT_TRUE(a.val.images.equal(b.val.images));
  at::Tensor all =
      at::cat({a.train.images.view({-1}), a.val.images.view({-1})});
  EXPECT_EQ(std::get<0>(at::_unique(all)).numel(), 1000);
  TrainValSplit limited = SplitTrainVal(d, 0.1, 50, 3);
  EXPECT_EQ(limited.train.size(), 50);
  EXPECT_TRUE(limited.val.images.equal(a.val.images));
}

TEST(SelectClassesTest, KeepsListedClassesRelabelledAndReturnsTheRest) {
  // Each image's single pixel is its original class, so where every
  // example went can be read back.
  DataBundle d;
  d.classes = 5;
  auto make = [](int n) {
    at::Tensor labels = at::arange(n, at::kLong).remainder(5);
    return TensorDataset{labels.to(at::kByte).view({n, 1, 1, 1}).clone(),
                         labels};
  };
  d.train = make(50);
  d.test = make(25);
  at::Tensor held_out = SelectClasses(&d, {3, 1});
  EXPECT_EQ(d.classes, 2);
  ASSERT_EQ(d.train.size(), 20);
  ASSERT_EQ(d.test.size(), 10);
  for (const TensorDataset* part : {&d.train, &d.test}) {
    for (int64_t i = 0; i < part->size(); ++i) {
      const int64_t label = part->labels[i].item<int64_t>();
      const int original = part->images[i].flatten()[0].item<uint8_t>();
      // 3 -> 0, 1 -> 1: the listed order.
      EXPECT_EQ(original, label == 0 ? 3 : 1);
    }
  }
  // The held-out test images: classes 0, 2 and 4 only, 5 of each; none of
  // them is a training class.
  ASSERT_EQ(held_out.size(0), 15);
  for (int64_t i = 0; i < held_out.size(0); ++i) {
    const int original = held_out[i].flatten()[0].item<uint8_t>();
    EXPECT_TRUE(original == 0 || original == 2 || original == 4) << original;
  }
}

TEST(SyntheticTest, DeterministicBalancedAndSeparated) {
  calib::SyntheticOptions o;
  o.classes = 2;
  o.size = 2;
  o.train_count = 4000;
  o.test_count = 100;
  o.separation = 3.0;
  DataBundle a = MakeSynthetic(o, 5), b = MakeSynthetic(o, 5);
  EXPECT_TRUE(a.train.images.equal(b.train.images));
  EXPECT_EQ(a.train.labels.eq(1).sum().item<int64_t>(), 2000);
  // Class 0 ~ N(0, I), class 1 ~ N(3 * 1, I).
  at::Tensor x = a.train.images.view({4000, -1});
  EXPECT_NEAR(x.index({a.train.labels.eq(0)}).mean().item<double>(), 0.0, 0.05);
  EXPECT_NEAR(x.index({a.train.labels.eq(1)}).mean().item<double>(), 3.0, 0.05);
}

TEST(AugmentTest, CropFlipKeepsShapeAndShiftsContent) {
  at::manual_seed(0);
  at::Tensor x = at::arange(2 * 1 * 8 * 8, at::kFloat).view({2, 1, 8, 8}) + 1;
  at::Tensor y = RandomCropFlip(x, 4);
  EXPECT_EQ(y.sizes(), x.sizes());
  // Every non-padding value of an output image comes from the same input
  // image.
  for (int i = 0; i < 2; ++i) {
    at::Tensor vals = y[i].masked_select(y[i].ne(0));
    EXPECT_TRUE(at::isin(vals, x[i].view({-1})).all().item<bool>());
  }
}

TEST(NormalizerTest, ZeroMeanUnitStd) {
  at::Tensor x = at::randint(0, 256, {500, 3, 4, 4}, at::kLong).to(at::kByte);
  Normalizer n = Normalizer::Fit(x);
  at::Tensor y = n(x);
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(y.select(1, c).mean().item<double>(), 0.0, 1e-4);
    EXPECT_NEAR(y.select(1, c).std().item<double>(), 1.0, 1e-3);
  }
}

}  // namespace
}  // namespace mixcal::core
