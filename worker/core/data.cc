#include "worker/core/data.h"

#include <ATen/CPUGeneratorImpl.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"

namespace mixcal::core {
namespace {

namespace fs = std::filesystem;

// Salts so that the data's random streams differ from each other and from the
// training stream for the same seed.
constexpr uint64_t kSplitSalt = 0x51u;
constexpr uint64_t kNoiseSalt = 0x7e5u;
constexpr uint64_t kSyntheticSalt = 0x5e7u;

struct GzCloser {
  void operator()(gzFile f) const {
    if (f != nullptr) gzclose(f);
  }
};
using GzFile = std::unique_ptr<std::remove_pointer_t<gzFile>, GzCloser>;

absl::StatusOr<GzFile> OpenGz(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  }
  if (fs::is_directory(path, ec)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": is a directory, expected a file"));
  }
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) {
    return absl::PermissionDeniedError(absl::StrCat(path, ": cannot open"));
  }
  return GzFile(f);
}

// Reads exactly n bytes or says why not.
absl::Status ReadExactly(gzFile f, const std::string& path, void* out, size_t n,
                         absl::string_view what) {
  size_t done = 0;
  auto* p = static_cast<unsigned char*>(out);
  while (done < n) {
    unsigned chunk =
        static_cast<unsigned>(std::min<size_t>(n - done, 1u << 30));
    int got = gzread(f, p + done, chunk);
    if (got < 0) {
      int err = 0;
      const char* msg = gzerror(f, &err);
      return absl::DataLossError(
          absl::StrCat(path, ": corrupt (", msg, ") while reading ", what));
    }
    if (got == 0) {
      return absl::DataLossError(absl::StrCat(path, ": truncated: expected ", n,
                                              " bytes of ", what, ", got ",
                                              done));
    }
    done += static_cast<size_t>(got);
  }
  return absl::OkStatus();
}

absl::StatusOr<uint32_t> ReadBigEndian32(gzFile f, const std::string& path,
                                         absl::string_view what) {
  unsigned char b[4];
  if (absl::Status s = ReadExactly(f, path, b, 4, what); !s.ok()) return s;
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) |
         (uint32_t{b[2]} << 8) | uint32_t{b[3]};
}

absl::Status ExpectEnd(gzFile f, const std::string& path) {
  unsigned char extra;
  int got = gzread(f, &extra, 1);
  if (got > 0) {
    return absl::DataLossError(
        absl::StrCat(path, ": malformed: data after the declared end"));
  }
  if (got < 0) {
    int err = 0;
    return absl::DataLossError(
        absl::StrCat(path, ": corrupt (", gzerror(f, &err), ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<at::Tensor> ReadIdxImages(const std::string& path) {
  absl::StatusOr<GzFile> f = OpenGz(path);
  if (!f.ok()) return f.status();
  absl::StatusOr<uint32_t> magic =
      ReadBigEndian32(f->get(), path, "the header");
  if (!magic.ok()) return magic.status();
  if (*magic != 0x00000803u) {
    return absl::DataLossError(absl::StrCat(
        path, ": malformed: magic 0x", absl::Hex(*magic, absl::kZeroPad8),
        ", expected 0x00000803 (IDX, unsigned bytes, 3 dimensions)"));
  }
  uint32_t dims[3];
  for (uint32_t& d : dims) {
    absl::StatusOr<uint32_t> v = ReadBigEndian32(f->get(), path, "the header");
    if (!v.ok()) return v.status();
    d = *v;
  }
  if (dims[0] == 0 || dims[0] > 100000000u || dims[1] == 0 || dims[1] > 4096 ||
      dims[2] == 0 || dims[2] > 4096) {
    return absl::DataLossError(absl::StrCat(
        path, ": malformed: dimensions ", dims[0], "x", dims[1], "x", dims[2]));
  }
  at::Tensor images = at::empty({dims[0], 1, dims[1], dims[2]}, at::kByte);
  if (absl::Status s = ReadExactly(f->get(), path, images.data_ptr<uint8_t>(),
                                   images.numel(), "image data");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ExpectEnd(f->get(), path); !s.ok()) return s;
  return images;
}

absl::StatusOr<at::Tensor> ReadIdxLabels(const std::string& path, int classes) {
  absl::StatusOr<GzFile> f = OpenGz(path);
  if (!f.ok()) return f.status();
  absl::StatusOr<uint32_t> magic =
      ReadBigEndian32(f->get(), path, "the header");
  if (!magic.ok()) return magic.status();
  if (*magic != 0x00000801u) {
    return absl::DataLossError(absl::StrCat(
        path, ": malformed: magic 0x", absl::Hex(*magic, absl::kZeroPad8),
        ", expected 0x00000801 (IDX, unsigned bytes, 1 dimension)"));
  }
  absl::StatusOr<uint32_t> n = ReadBigEndian32(f->get(), path, "the header");
  if (!n.ok()) return n.status();
  if (*n == 0 || *n > 100000000u) {
    return absl::DataLossError(
        absl::StrCat(path, ": malformed: label count ", *n));
  }
  std::vector<uint8_t> raw(*n);
  if (absl::Status s =
          ReadExactly(f->get(), path, raw.data(), raw.size(), "label data");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ExpectEnd(f->get(), path); !s.ok()) return s;
  at::Tensor labels = at::empty({static_cast<int64_t>(*n)}, at::kLong);
  int64_t* out = labels.data_ptr<int64_t>();
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] >= classes) {
      return absl::DataLossError(
          absl::StrCat(path, ": malformed: label ", raw[i], " at index ", i,
                       " outside [0, ", classes - 1, "]"));
    }
    out[i] = raw[i];
  }
  return labels;
}

// The first of `names` that exists in `dir`, else the first name (so that the
// NotFound error names what was expected).
std::string FindFile(const std::string& dir,
                     std::initializer_list<const char*> names) {
  std::error_code ec;
  for (const char* n : names) {
    fs::path p = fs::path(dir) / n;
    if (fs::exists(p, ec)) return p.string();
  }
  return (fs::path(dir) / *names.begin()).string();
}

absl::StatusOr<TensorDataset> ReadIdxSplit(const std::string& dir,
                                           const std::string& prefix) {
  std::string images =
      FindFile(dir, {(prefix + "-images-idx3-ubyte.gz").c_str(),
                     (prefix + "-images-idx3-ubyte").c_str(),
                     (prefix + "-images.idx3-ubyte").c_str()});
  std::string labels =
      FindFile(dir, {(prefix + "-labels-idx1-ubyte.gz").c_str(),
                     (prefix + "-labels-idx1-ubyte").c_str(),
                     (prefix + "-labels.idx1-ubyte").c_str()});
  return ReadIdx(images, labels, 10);
}

absl::StatusOr<TensorDataset> ReadCifarFiles(
    const std::vector<std::string>& paths, int classes) {
  const int label_bytes = classes == 100 ? 2 : 1;
  const int64_t record = label_bytes + 3 * 32 * 32;
  std::vector<at::Tensor> images, labels;
  for (const std::string& path : paths) {
    std::error_code ec;
    if (!fs::exists(path, ec)) {
      return absl::NotFoundError(absl::StrCat(path, ": no such file"));
    }
    uintmax_t size = fs::file_size(path, ec);
    if (ec || size == 0 || size % record != 0) {
      return absl::DataLossError(absl::StrCat(
          path, ": malformed: ", size, " bytes is not a whole number of ",
          record, "-byte CIFAR-", classes, " records"));
    }
    int64_t n = static_cast<int64_t>(size / record);
    std::vector<uint8_t> raw(size);
    absl::StatusOr<GzFile> f = OpenGz(path);
    if (!f.ok()) return f.status();
    if (absl::Status s =
            ReadExactly(f->get(), path, raw.data(), raw.size(), "records");
        !s.ok()) {
      return s;
    }
    at::Tensor img = at::empty({n, 3, 32, 32}, at::kByte);
    at::Tensor lab = at::empty({n}, at::kLong);
    uint8_t* ip = img.data_ptr<uint8_t>();
    int64_t* lp = lab.data_ptr<int64_t>();
    for (int64_t i = 0; i < n; ++i) {
      const uint8_t* r = raw.data() + i * record;
      int label = r[label_bytes - 1];  // CIFAR-100: coarse, then fine
      if (label >= classes) {
        return absl::DataLossError(
            absl::StrCat(path, ": malformed: label ", label, " in record ", i,
                         " outside [0, ", classes - 1, "]"));
      }
      lp[i] = label;
      std::memcpy(ip + i * 3072, r + label_bytes, 3072);
    }
    images.push_back(img);
    labels.push_back(lab);
  }
  return TensorDataset{at::cat(images), at::cat(labels)};
}

at::Generator CpuGenerator(uint64_t seed) {
  return at::make_generator<at::CPUGeneratorImpl>(seed);
}

}  // namespace

std::string DefaultDataDir(calib::DatasetKind kind) {
  if (kind == calib::DatasetKind::kFashionMnist)
    return "/usr/share/datasets/fashion-mnist";
  return "";
}

absl::StatusOr<TensorDataset> ReadIdx(const std::string& images_path,
                                      const std::string& labels_path,
                                      int classes) {
  absl::StatusOr<at::Tensor> images = ReadIdxImages(images_path);
  if (!images.ok()) return images.status();
  absl::StatusOr<at::Tensor> labels = ReadIdxLabels(labels_path, classes);
  if (!labels.ok()) return labels.status();
  if (images->size(0) != labels->size(0)) {
    return absl::DataLossError(
        absl::StrCat(images_path, " holds ", images->size(0), " images but ",
                     labels_path, " holds ", labels->size(0), " labels"));
  }
  return TensorDataset{*std::move(images), *std::move(labels)};
}

absl::StatusOr<DataBundle> ReadCifar(const std::string& dir, int classes) {
  std::error_code ec;
  std::string root = dir;
  for (const char* sub : {"cifar-10-batches-bin", "cifar-100-binary"}) {
    if (fs::is_directory(fs::path(dir) / sub, ec))
      root = (fs::path(dir) / sub).string();
  }
  if (!fs::is_directory(root, ec)) {
    return absl::NotFoundError(absl::StrCat(dir, ": no such directory"));
  }
  std::vector<std::string> train_files, test_files;
  if (classes == 10) {
    for (int i = 1; i <= 5; ++i)
      train_files.push_back(
          (fs::path(root) / absl::StrCat("data_batch_", i, ".bin")).string());
    test_files.push_back((fs::path(root) / "test_batch.bin").string());
  } else {
    train_files.push_back((fs::path(root) / "train.bin").string());
    test_files.push_back((fs::path(root) / "test.bin").string());
  }
  absl::StatusOr<TensorDataset> train = ReadCifarFiles(train_files, classes);
  if (!train.ok()) return train.status();
  absl::StatusOr<TensorDataset> test = ReadCifarFiles(test_files, classes);
  if (!test.ok()) return test.status();
  DataBundle b;
  b.train = *std::move(train);
  b.test = *std::move(test);
  b.classes = classes;
  b.channels = 3;
  b.height = b.width = 32;
  return b;
}

DataBundle MakeSynthetic(const calib::SyntheticOptions& o, uint64_t seed) {
  const int64_t dim = int64_t{o.channels} * o.size * o.size;
  std::mt19937_64 rng(seed ^ kSyntheticSalt);
  std::bernoulli_distribution coin(0.5);
  at::Tensor means = at::zeros({o.classes, dim}, at::kFloat);
  float* mp = means.data_ptr<float>();
  for (int c = 1; c < o.classes; ++c) {
    for (int64_t d = 0; d < dim; ++d) {
      float sign = (c == 1 || coin(rng)) ? 1.0f : -1.0f;
      mp[c * dim + d] = static_cast<float>(o.separation) * sign;
    }
  }
  at::Generator gen = CpuGenerator(seed ^ kSyntheticSalt);
  auto make = [&](int64_t n) {
    // Balanced classes in a shuffled order.
    at::Tensor labels = at::arange(n, at::kLong).remainder(o.classes);
    labels = labels.index_select(0, at::randperm(n, gen, at::kLong));
    at::Tensor x =
        at::randn({n, dim}, gen, at::kFloat) + means.index_select(0, labels);
    return TensorDataset{x.view({n, o.channels, o.size, o.size}).contiguous(),
                         labels};
  };
  DataBundle b;
  b.train = make(o.train_count);
  b.test = make(o.test_count);
  b.classes = o.classes;
  b.channels = o.channels;
  b.height = b.width = o.size;
  return b;
}

absl::StatusOr<DataBundle> LoadDataset(calib::DatasetKind kind,
                                       const std::string& data_dir,
                                       const calib::SyntheticOptions& synthetic,
                                       uint64_t seed) {
  if (kind == calib::DatasetKind::kSynthetic) return MakeSynthetic(synthetic, seed);
  std::string dir = data_dir.empty() ? DefaultDataDir(kind) : data_dir;
  if (dir.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("data_dir is required for ", Name(kind)));
  }
  if (kind == calib::DatasetKind::kCifar10) return ReadCifar(dir, 10);
  if (kind == calib::DatasetKind::kCifar100) return ReadCifar(dir, 100);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    std::string hint =
        kind == calib::DatasetKind::kFashionMnist && data_dir.empty()
            ? " (install the Debian package dataset-fashion-mnist)"
            : "";
    return absl::NotFoundError(absl::StrCat(dir, ": no such directory", hint));
  }
  absl::StatusOr<TensorDataset> train = ReadIdxSplit(dir, "train");
  if (!train.ok()) return train.status();
  absl::StatusOr<TensorDataset> test = ReadIdxSplit(dir, "t10k");
  if (!test.ok()) return test.status();
  DataBundle b;
  b.train = *std::move(train);
  b.test = *std::move(test);
  b.classes = 10;
  b.channels = 1;
  b.height = static_cast<int>(b.train.images.size(2));
  b.width = static_cast<int>(b.train.images.size(3));
  if (b.test.images.size(2) != b.height || b.test.images.size(3) != b.width) {
    return absl::DataLossError(
        absl::StrCat(dir, ": train images are ", b.height, "x", b.width,
                     " but test images are ", b.test.images.size(2), "x",
                     b.test.images.size(3)));
  }
  return b;
}

at::Tensor SelectClasses(DataBundle* data, const std::vector<int>& classes) {
  // new_label[c] = position of c in `classes`, or -1 when left out.
  std::vector<int64_t> map(static_cast<size_t>(data->classes), -1);
  for (size_t i = 0; i < classes.size(); ++i)
    map[static_cast<size_t>(classes[i])] = static_cast<int64_t>(i);
  const at::Tensor lookup = at::tensor(map, at::kLong);
  auto keep = [&](const TensorDataset& d, at::Tensor* held_out) {
    const at::Tensor relabelled = lookup.index_select(0, d.labels);
    const at::Tensor kept = relabelled.ge(0).nonzero().squeeze(1);
    if (held_out != nullptr) {
      const at::Tensor other = relabelled.lt(0).nonzero().squeeze(1);
      *held_out = d.images.index_select(0, other).contiguous();
    }
    return TensorDataset{d.images.index_select(0, kept).contiguous(),
                         relabelled.index_select(0, kept).contiguous()};
  };
  at::Tensor held_out;
  data->train = keep(data->train, nullptr);
  data->test = keep(data->test, &held_out);
  if (data->val.size() > 0) data->val = keep(data->val, nullptr);
  data->classes = static_cast<int>(classes.size());
  return held_out;
}

at::Tensor ApplyLabelNoise(const at::Tensor& labels, int classes, double rate,
                           calib::NoiseKind kind, uint64_t seed) {
  at::Tensor out = labels.to(at::kCPU, at::kLong).clone();
  if (rate <= 0) return out;
  std::mt19937_64 rng(seed ^ kNoiseSalt);
  std::uniform_int_distribution<int> other(1, classes - 1);
  // m(c): one fixed other class per class.
  std::vector<int> pair_of(classes);
  for (int c = 0; c < classes; ++c) pair_of[c] = (c + other(rng)) % classes;
  std::bernoulli_distribution flip(rate);
  int64_t* p = out.data_ptr<int64_t>();
  for (int64_t i = 0; i < out.size(0); ++i) {
    int c = static_cast<int>(p[i]);
    int flipped =
        kind == calib::NoiseKind::kPair ? pair_of[c] : (c + other(rng)) % classes;
    if (flip(rng)) p[i] = flipped;
  }
  return out;
}

TrainValSplit SplitTrainVal(const TensorDataset& train, double val_fraction,
                            int64_t train_limit, uint64_t seed) {
  const int64_t n = train.size();
  at::Generator gen = CpuGenerator(seed ^ kSplitSalt);
  at::Tensor perm = at::randperm(n, gen, at::kLong);
  int64_t n_val = static_cast<int64_t>(std::llround(val_fraction * n));
  n_val = std::min(n_val, n - 1);
  at::Tensor val_idx = perm.slice(0, 0, n_val);
  at::Tensor train_idx = perm.slice(0, n_val, n);
  if (train_limit > 0 && train_limit < train_idx.size(0)) {
    train_idx = train_idx.slice(0, 0, train_limit);
  }
  // Keep the original order inside each part: contiguous reads, and the same
  // examples whatever the limit.
  train_idx = std::get<0>(train_idx.sort());
  val_idx = std::get<0>(val_idx.sort());
  TrainValSplit s;
  s.train = {train.images.index_select(0, train_idx),
             train.labels.index_select(0, train_idx)};
  s.val = {train.images.index_select(0, val_idx),
           train.labels.index_select(0, val_idx)};
  return s;
}

Normalizer Normalizer::Fit(const at::Tensor& images) {
  Normalizer n;
  const int64_t channels = images.size(1);
  for (int64_t c = 0; c < channels; ++c) {
    at::Tensor ch = images.select(1, c).to(at::kDouble);
    double mean = ch.mean().item<double>();
    double stddev = ch.std().item<double>();
    n.mean_.push_back(mean);
    n.std_.push_back(stddev > 1e-12 ? stddev : 1.0);
  }
  return n;
}

at::Tensor Normalizer::operator()(const at::Tensor& batch) const {
  if (mean_.empty()) return batch;  // not fitted: token ids pass unchanged
  if (!mean_t_.defined() || mean_t_.device() != batch.device()) {
    std::vector<float> m, inv;
    for (size_t c = 0; c < mean_.size(); ++c) {
      m.push_back(static_cast<float>(mean_[c]));
      inv.push_back(static_cast<float>(1.0 / std_[c]));
    }
    const int64_t ch = static_cast<int64_t>(m.size());
    mean_t_ = at::tensor(m).view({1, ch, 1, 1}).to(batch.device());
    inv_std_t_ = at::tensor(inv).view({1, ch, 1, 1}).to(batch.device());
  }
  // Statistics are in the images' own scale, so no 1/255 step is needed.
  // One float copy keeping the batch's strides (channels-last stays so),
  // then in-place arithmetic.
  at::Tensor x = at::empty_like(batch, batch.options().dtype(at::kFloat),
                                at::MemoryFormat::Preserve);
  x.copy_(batch);
  return x.sub_(mean_t_).mul_(inv_std_t_);
}

at::Tensor RandomCropFlip(const at::Tensor& batch, int pad) {
  const int64_t b = batch.size(0), c = batch.size(1), h = batch.size(2),
                w = batch.size(3);
  auto long_opts = at::TensorOptions().dtype(at::kLong).device(batch.device());
  at::Tensor padded = at::constant_pad_nd(batch, {pad, pad, pad, pad}, 0);
  at::Tensor oy = at::randint(0, 2 * pad + 1, {b}, long_opts);
  at::Tensor ox = at::randint(0, 2 * pad + 1, {b}, long_opts);
  // Gather rows, then columns: per-example crops without a loop.
  at::Tensor rows = (oy.view({b, 1}) + at::arange(h, long_opts).view({1, h}))
                        .view({b, 1, h, 1})
                        .expand({b, c, h, w + 2 * pad});
  at::Tensor cropped = padded.gather(2, rows);
  at::Tensor cols = (ox.view({b, 1}) + at::arange(w, long_opts).view({1, w}))
                        .view({b, 1, 1, w})
                        .expand({b, c, h, w});
  cropped = cropped.gather(3, cols);
  at::Tensor flip = at::rand({b}, batch.options().dtype(at::kFloat)) < 0.5;
  return at::where(flip.view({b, 1, 1, 1}), cropped.flip({3}), cropped);
}

}  // namespace mixcal::core
