#ifndef MIXCAL_WORKER_CORE_DATA_H_
#define MIXCAL_WORKER_CORE_DATA_H_

// Datasets held in memory as tensors. Internal to the training core (it
// includes ATen); nothing outside worker/core includes it.

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "calib/config.h"

namespace mixcal::core {

// images: [N, C, H, W], uint8 (pixels 0..255) or float32 (synthetic), or
// token ids [N, L] int64; labels: [N] int64 in [0, classes).
struct TensorDataset {
  at::Tensor images;
  at::Tensor labels;
  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};

struct DataBundle {
  TensorDataset train;
  TensorDataset test;
  TensorDataset val;  // the file's own validation split; empty: none
  at::Tensor ood;     // the file's out-of-distribution inputs; or undefined
  int classes = 0;
  int channels = 0;
  int height = 0;
  int width = 0;
  bool tokens = false;  // images holds token ids [N, length]
  int length = 0;
  int64_t vocab = 0;    // tokens: the largest id + 1
};

// Reads a NumPy .npz (docs/own-model.md): x_train, y_train, x_test, y_test,
// optional x_val + y_val and x_ood. Images are uint8 or float (float16/64
// become float32) as [N, H, W], [N, H, W, C] or [N, C, H, W] (channels: the
// side of 1 to 4 against a side over 4); token ids int64 or int32 [N, L].
// Labels are integers 0..K-1 with K = the largest training label + 1 (at
// least 2). Errors name the file, the array and, for labels, the first bad
// one. Stored members are mapped, not copied.
absl::StatusOr<DataBundle> ReadNpz(const std::string& path);

// Reads a folder of images: train/<class>/ and test/<class>/ (and
// optionally val/<class>/) of PNG or JPEG files (libpng, libjpeg); classes
// 0..K-1 are train/'s subfolders in sorted order. Every image is converted
// to RGB (one channel when every file is greyscale) and resized to
// size x size (bilinear), uint8. With a `cache_dir`, the decoded tensors
// are kept there in a file keyed by the images' names, sizes and times, so
// that the next job reads them instead of decoding again.
absl::StatusOr<DataBundle> ReadImageFolder(const std::string& dir, int size,
                                           const std::string& cache_dir);

// The default directory of a dataset ("" when it has none).
std::string DefaultDataDir(calib::DatasetKind kind);

// Reads an IDX image file and its label file, gzip'ed or raw (both are read
// through zlib, which passes raw files through). Errors name the path and
// what is wrong: NotFound when missing, DataLoss when truncated or malformed.
absl::StatusOr<TensorDataset> ReadIdx(const std::string& images_path,
                                      const std::string& labels_path,
                                      int classes);

// Reads the binary version of CIFAR-10 (data_batch_{1..5}.bin, test_batch.bin)
// or CIFAR-100 (train.bin, test.bin; fine labels) from `dir` or from its
// cifar-10-batches-bin / cifar-100-binary subfolder.
absl::StatusOr<DataBundle> ReadCifar(const std::string& dir, int classes);

// Generates the synthetic dataset (see SyntheticOptions) from `seed`.
DataBundle MakeSynthetic(const calib::SyntheticOptions& options, uint64_t seed);

// Loads `kind` from `data_dir` (empty: DefaultDataDir).
absl::StatusOr<DataBundle> LoadDataset(calib::DatasetKind kind,
                                       const std::string& data_dir,
                                       const calib::SyntheticOptions& synthetic,
                                       uint64_t seed);

// Returns labels with a fraction `rate` flipped, drawn from `seed`:
// kPair flips class c to one fixed other class m(c) (m drawn from the seed),
// kSymmetric to a uniformly drawn other class.
at::Tensor ApplyLabelNoise(const at::Tensor& labels, int classes, double rate,
                           calib::NoiseKind kind, uint64_t seed);

// Keeps only the examples of `classes` in train and test, relabelled
// 0..k-1 in the order listed, and sets data->classes = k. Returns the test
// examples of every other class (the held-out categories), images only.
// `classes` is validated (distinct, each in [0, data->classes)).
at::Tensor SelectClasses(DataBundle* data, const std::vector<int>& classes);

// The training set split from `seed`: a fraction `val_fraction` held out as
// validation, then at most `train_limit` (0 = all) kept for training.
struct TrainValSplit {
  TensorDataset train;
  TensorDataset val;
};
TrainValSplit SplitTrainVal(const TensorDataset& train, double val_fraction,
                            int64_t train_limit, uint64_t seed);

// Per-channel normalisation to zero mean and unit variance, with statistics
// from the training images.
class Normalizer {
 public:
  Normalizer() = default;
  // `images` as in TensorDataset.
  static Normalizer Fit(const at::Tensor& images);
  // Converts a batch on any device to float32, normalised; a Normalizer
  // never fitted returns the batch unchanged (token ids).
  at::Tensor operator()(const at::Tensor& batch) const;
  // Per-channel mean and std in the images' own scale (0..255 for uint8).
  const std::vector<double>& mean() const { return mean_; }
  const std::vector<double>& stddev() const { return std_; }

 private:
  std::vector<double> mean_, std_;
  mutable at::Tensor mean_t_, inv_std_t_;  // cached on the batch's device
};

// Random crop with zero padding `pad` and horizontal flip, per example, on the
// batch's device; uses the global generator of that device.
at::Tensor RandomCropFlip(const at::Tensor& batch, int pad);

}  // namespace mixcal::core

#endif  // MIXCAL_WORKER_CORE_DATA_H_
