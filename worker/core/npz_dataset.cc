// ReadNpz (data.h): a researcher's arrays as a DataBundle.

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "worker/core/data.h"
#include "worker/core/npz.h"

namespace mixcal::core {
namespace {

struct NpzReader {
  std::string who;  // "data_file data.npz"
  NpzFile npz;

  absl::StatusOr<NpyArray> Read(absl::string_view name) const {
    absl::StatusOr<NpyArray> a = npz.Read(name);
    if (!a.ok()) {
      return absl::Status(a.status().code(),
                          absl::StrCat(who, ": ", a.status().message()));
    }
    return a;
  }

  std::string Shape(const NpyArray& a) const {
    return absl::StrCat(a.dtype, " [", absl::StrJoin(a.shape, ", "), "]");
  }

  // The array as a tensor over the file's bytes (kept alive by the tensor).
  static at::Tensor View(const NpyArray& a, at::ScalarType type) {
    auto keep = std::make_shared<NpyArray>(a);
    return at::from_blob(
        const_cast<char*>(a.data()), a.shape,
        [keep](void*) mutable { keep.reset(); },
        at::TensorOptions().dtype(type));
  }

  // Inputs: images [N, C, H, W] (uint8 or float32) or tokens [N, L] int64.
  absl::StatusOr<at::Tensor> Inputs(absl::string_view name,
                                    bool* tokens) const {
    MIXCAL_ASSIGN_OR_RETURN(NpyArray a, Read(name));
    const auto& s = a.shape;
    const std::string allowed =
        "images uint8/float [N,H,W], [N,H,W,C] or [N,C,H,W], or token ids "
        "int64/int32 [N,L]";
    if (s.empty() || s[0] < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          who, ": ", name, " is ", Shape(a), "; it must hold ", allowed));
    }
    for (int64_t d : s) {
      if (d < 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            who, ": ", name, " is ", Shape(a), ": a side of 0"));
      }
    }
    if (a.dtype == "int64" || a.dtype == "int32") {
      if (s.size() != 2) {
        return absl::InvalidArgumentError(
            absl::StrCat(who, ": ", name, " is ", Shape(a),
                         "; integer inputs are token ids [N, L]"));
      }
      *tokens = true;
      at::Tensor t = View(a, a.dtype == "int64" ? at::kLong : at::kInt);
      return a.dtype == "int64" ? t : t.to(at::kLong);
    }
    at::ScalarType type;
    if (a.dtype == "uint8") {
      type = at::kByte;
    } else if (a.dtype == "float32") {
      type = at::kFloat;
    } else if (a.dtype == "float64") {
      type = at::kDouble;
    } else if (a.dtype == "float16") {
      type = at::kHalf;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          who, ": ", name, " is ", Shape(a), "; it must hold ", allowed));
    }
    *tokens = false;
    at::Tensor t = View(a, type);
    if (type != at::kByte && type != at::kFloat) t = t.to(at::kFloat);
    if (s.size() == 3) return t.unsqueeze(1);
    if (s.size() != 4) {
      return absl::InvalidArgumentError(absl::StrCat(
          who, ": ", name, " is ", Shape(a), "; it must hold ", allowed));
    }
    const bool last_small = s[3] <= 4, second_small = s[1] <= 4;
    if (last_small && !second_small) {
      return t.permute({0, 3, 1, 2}).contiguous();  // NHWC
    }
    if (second_small && !last_small) return t;  // NCHW
    return absl::InvalidArgumentError(absl::StrCat(
        who, ": ", name, " is ", Shape(a),
        "; cannot tell its channels: the channel side must be 1 to 4 and "
        "the image sides over 4 ([N,H,W,C] or [N,C,H,W])"));
  }

  absl::StatusOr<at::Tensor> Labels(absl::string_view name,
                                    int64_t count) const {
    MIXCAL_ASSIGN_OR_RETURN(NpyArray a, Read(name));
    static const std::vector<std::pair<std::string, at::ScalarType>> kTypes = {
        {"int64", at::kLong},  {"int32", at::kInt},   {"int16", at::kShort},
        {"int8", at::kChar},   {"uint8", at::kByte},  {"uint16", at::kInt},
        {"uint32", at::kLong}, {"uint64", at::kLong}};
    at::ScalarType type = at::kFloat;
    for (const auto& [dtype, t] : kTypes) {
      if (a.dtype == dtype) type = t;
    }
    if (type == at::kFloat || a.shape.size() != 1 || a.shape[0] != count) {
      return absl::InvalidArgumentError(absl::StrCat(
          who, ": ", name, " is ", Shape(a), "; it must be integer labels [",
          count, "], one per input"));
    }
    at::Tensor t;
    if (a.dtype == "uint16" || a.dtype == "uint32" || a.dtype == "uint64") {
      // No unsigned 16/32/64-bit tensors: widen element by element.
      std::vector<int64_t> v(count);
      for (int64_t i = 0; i < count; ++i) {
        uint64_t x = 0;
        std::memcpy(&x, a.data() + i * a.item_size, a.item_size);
        v[i] = x > (uint64_t{1} << 62) ? -1 : static_cast<int64_t>(x);
      }
      t = at::tensor(v, at::kLong);
    } else {
      t = View(a, type).to(at::kLong);
    }
    return t;
  }
};

// The first label outside [0, classes), as an error; OK when none.
absl::Status CheckLabels(const std::string& who, const std::string& name,
                         const at::Tensor& y, int64_t classes,
                         const std::string& why) {
  at::Tensor bad = (y < 0).logical_or(y >= classes).nonzero();
  if (bad.numel() == 0) return absl::OkStatus();
  const int64_t i = bad[0][0].item<int64_t>();
  return absl::InvalidArgumentError(absl::StrCat(
      who, ": ", name, "[", i, "] is ", y[i].item<int64_t>(), "; labels must be 0..",
      classes - 1, why));
}

}  // namespace

absl::StatusOr<DataBundle> ReadNpz(const std::string& path) {
  const std::string who = absl::StrCat(
      "data_file ", std::filesystem::path(path).filename().string());
  absl::StatusOr<NpzFile> npz = NpzFile::Open(path);
  if (!npz.ok()) {
    return absl::Status(npz.status().code(),
                        absl::StrCat(who, ": ", npz.status().message()));
  }
  NpzReader r{who, *std::move(npz)};
  for (const char* name : {"x_train", "y_train", "x_test", "y_test"}) {
    if (!r.npz.Has(name)) {
      return absl::InvalidArgumentError(absl::StrCat(
          who, ": has no array ", name,
          "; an .npz dataset holds x_train, y_train, x_test, y_test "
          "(optional x_val, y_val, x_ood); it has ",
          absl::StrJoin(r.npz.Names(), ", ")));
    }
  }
  if (r.npz.Has("x_val") != r.npz.Has("y_val")) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": x_val and y_val come together"));
  }
  DataBundle b;
  bool tokens = false;
  MIXCAL_ASSIGN_OR_RETURN(b.train.images, r.Inputs("x_train", &tokens));
  b.tokens = tokens;
  MIXCAL_ASSIGN_OR_RETURN(b.train.labels,
                          r.Labels("y_train", b.train.images.size(0)));
  auto same_kind = [&](absl::string_view name,
                       const at::Tensor& x) -> absl::Status {
    if (x.sizes().slice(1) != b.train.images.sizes().slice(1) ||
        x.scalar_type() != b.train.images.scalar_type()) {
      return absl::InvalidArgumentError(absl::StrCat(
          who, ": ", name, " is ", x.toString(), " [",
          absl::StrJoin(x.sizes(), ", "), "] (as loaded); x_train is ",
          b.train.images.toString(), " [",
          absl::StrJoin(b.train.images.sizes(), ", "),
          "]: every split needs the same example shape and type"));
    }
    return absl::OkStatus();
  };
  MIXCAL_ASSIGN_OR_RETURN(b.test.images, r.Inputs("x_test", &tokens));
  MIXCAL_RETURN_IF_ERROR(same_kind("x_test", b.test.images));
  MIXCAL_ASSIGN_OR_RETURN(b.test.labels,
                          r.Labels("y_test", b.test.images.size(0)));
  if (r.npz.Has("x_val")) {
    MIXCAL_ASSIGN_OR_RETURN(b.val.images, r.Inputs("x_val", &tokens));
    MIXCAL_RETURN_IF_ERROR(same_kind("x_val", b.val.images));
    MIXCAL_ASSIGN_OR_RETURN(b.val.labels,
                            r.Labels("y_val", b.val.images.size(0)));
  }
  if (r.npz.Has("x_ood")) {
    MIXCAL_ASSIGN_OR_RETURN(b.ood, r.Inputs("x_ood", &tokens));
    MIXCAL_RETURN_IF_ERROR(same_kind("x_ood", b.ood));
  }

  const int64_t min_label = b.train.labels.min().item<int64_t>();
  const int64_t max_label = b.train.labels.max().item<int64_t>();
  if (min_label < 0) {
    MIXCAL_RETURN_IF_ERROR(CheckLabels(who, "y_train", b.train.labels,
                                       max_label + 1, ""));
  }
  if (max_label < 1 || max_label >= 100000) {
    return absl::InvalidArgumentError(absl::StrCat(
        who, ": y_train's labels run 0..", max_label,
        "; a dataset needs 2 to 100000 classes"));
  }
  b.classes = static_cast<int>(max_label + 1);
  const std::string why =
      absl::StrCat(" (y_train has ", b.classes, " classes)");
  MIXCAL_RETURN_IF_ERROR(
      CheckLabels(who, "y_test", b.test.labels, b.classes, why));
  if (b.val.labels.defined()) {
    MIXCAL_RETURN_IF_ERROR(
        CheckLabels(who, "y_val", b.val.labels, b.classes, why));
  }
  if (b.tokens) {
    b.length = static_cast<int>(b.train.images.size(1));
    int64_t vocab = 0;
    for (const at::Tensor* x : {&b.train.images, &b.test.images, &b.val.images,
                                &b.ood}) {
      if (!x->defined()) continue;
      if (x->min().item<int64_t>() < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(who, ": token ids must be 0 or more"));
      }
      vocab = std::max(vocab, x->max().item<int64_t>() + 1);
    }
    b.vocab = vocab;
  } else {
    b.channels = static_cast<int>(b.train.images.size(1));
    b.height = static_cast<int>(b.train.images.size(2));
    b.width = static_cast<int>(b.train.images.size(3));
  }
  return b;
}

}  // namespace mixcal::core
