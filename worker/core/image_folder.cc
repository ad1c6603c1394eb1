// ReadImageFolder (data.h): train/<class>/*.png|jpg, test/<class>/*, and
// optionally val/<class>/*, decoded with libpng and libjpeg, resized, and
// kept decoded in a cache file so that later jobs skip the decoding.

#include <ATen/ATen.h>
#include <torch/serialize.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "worker/core/data.h"

#if MIXCAL_HAVE_PNG
#include <png.h>
#endif
#if MIXCAL_HAVE_JPEG
#include <csetjmp>
#include <jpeglib.h>
#endif

namespace mixcal::core {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kMaxImages = 2'000'000;

struct Decoded {
  int width = 0, height = 0;
  bool grey = false;          // the file itself was greyscale
  std::vector<uint8_t> rgb;   // height x width x 3
};

#if MIXCAL_HAVE_PNG
absl::StatusOr<Decoded> DecodePng(const std::string& path) {
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, path.c_str())) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a readable PNG (", image.message, ")"));
  }
  Decoded d;
  d.grey = (image.format & PNG_FORMAT_FLAG_COLOR) == 0;
  image.format = PNG_FORMAT_RGB;
  d.width = static_cast<int>(image.width);
  d.height = static_cast<int>(image.height);
  d.rgb.resize(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, d.rgb.data(), 0, nullptr)) {
    png_image_free(&image);
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": a damaged PNG (", image.message, ")"));
  }
  return d;
}
#endif

#if MIXCAL_HAVE_JPEG
struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void OnJpegError(j_common_ptr info) {
  auto* e = reinterpret_cast<JpegError*>(info->err);
  (*info->err->format_message)(info, e->message);
  std::longjmp(e->jump, 1);
}

absl::StatusOr<Decoded> DecodeJpeg(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"),
                                             &std::fclose);
  if (file == nullptr) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  }
  jpeg_decompress_struct info;
  JpegError err;
  info.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = OnJpegError;
  Decoded d;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&info);
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": a damaged JPEG (", err.message, ")"));
  }
  jpeg_create_decompress(&info);
  jpeg_stdio_src(&info, file.get());
  jpeg_read_header(&info, TRUE);
  d.grey = info.jpeg_color_space == JCS_GRAYSCALE;
  info.out_color_space = JCS_RGB;
  jpeg_start_decompress(&info);
  d.width = static_cast<int>(info.output_width);
  d.height = static_cast<int>(info.output_height);
  d.rgb.resize(static_cast<size_t>(d.width) * d.height * 3);
  while (info.output_scanline < info.output_height) {
    JSAMPROW row = d.rgb.data() + static_cast<size_t>(info.output_scanline) *
                                      d.width * 3;
    jpeg_read_scanlines(&info, &row, 1);
  }
  jpeg_finish_decompress(&info);
  jpeg_destroy_decompress(&info);
  return d;
}
#endif

absl::StatusOr<Decoded> Decode(const std::string& path) {
  const std::string ext =
      absl::AsciiStrToLower(fs::path(path).extension().string());
  if (ext == ".png") {
#if MIXCAL_HAVE_PNG
    return DecodePng(path);
#else
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": this build has no libpng"));
#endif
  }
#if MIXCAL_HAVE_JPEG
  return DecodeJpeg(path);
#else
  return absl::FailedPreconditionError(
      absl::StrCat(path, ": this build has no libjpeg"));
#endif
}

bool IsImage(const fs::path& p) {
  const std::string ext = absl::AsciiStrToLower(p.extension().string());
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

// The images of one split: (path, class) in class order, then name order.
struct Listing {
  std::vector<std::pair<std::string, int>> files;
};

absl::StatusOr<Listing> List(const fs::path& split_dir,
                             const std::vector<std::string>& classes,
                             const std::string& who) {
  Listing out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(split_dir, ec)) {
    if (!entry.is_directory()) continue;
    const std::string name = entry.path().filename().string();
    if (std::find(classes.begin(), classes.end(), name) == classes.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          who, ": ", split_dir.filename().string(), "/", name,
          " is a class train/ does not have (", absl::StrJoin(classes, ", "),
          ")"));
    }
  }
  for (size_t c = 0; c < classes.size(); ++c) {
    std::vector<std::string> names;
    for (const auto& entry :
         fs::directory_iterator(split_dir / classes[c], ec)) {
      if (entry.is_regular_file() && IsImage(entry.path()))
        names.push_back(entry.path().string());
    }
    std::sort(names.begin(), names.end());
    for (std::string& n : names)
      out.files.emplace_back(std::move(n), static_cast<int>(c));
  }
  if (static_cast<int64_t>(out.files.size()) > kMaxImages) {
    return absl::InvalidArgumentError(absl::StrCat(
        who, ": ", out.files.size(), " images; at most ", kMaxImages));
  }
  return out;
}

// A key of the folder's contents and the size: names, byte sizes and
// modification times of every image.
std::string ContentKey(const std::vector<const Listing*>& splits, int size) {
  std::string text = absl::StrCat("size=", size);
  std::error_code ec;
  for (const Listing* l : splits) {
    absl::StrAppend(&text, "|split");
    for (const auto& [path, c] : l->files) {
      absl::StrAppend(
          &text, "|", path, ":", c, ":", fs::file_size(path, ec), ":",
          fs::last_write_time(path, ec).time_since_epoch().count());
    }
  }
  return absl::StrFormat("%016x", std::hash<std::string>{}(text));
}

absl::StatusOr<TensorDataset> DecodeSplit(const Listing& l, int size,
                                          bool* all_grey) {
  TensorDataset d;
  const int64_t n = static_cast<int64_t>(l.files.size());
  d.images = at::empty({n, 3, size, size}, at::kByte);
  d.labels = at::empty({n}, at::kLong);
  for (int64_t i = 0; i < n; ++i) {
    const auto& [path, c] = l.files[static_cast<size_t>(i)];
    MIXCAL_ASSIGN_OR_RETURN(Decoded img, Decode(path));
    *all_grey = *all_grey && img.grey;
    at::Tensor t = at::from_blob(img.rgb.data(), {img.height, img.width, 3},
                                 at::kByte)
                       .permute({2, 0, 1})
                       .unsqueeze(0)
                       .to(at::kFloat);
    if (img.height != size || img.width != size) {
      t = at::upsample_bilinear2d(t, {size, size}, /*align_corners=*/false);
    }
    d.images[i].copy_(t.squeeze(0).round().clamp(0, 255).to(at::kByte));
    d.labels[i] = c;
  }
  return d;
}

}  // namespace

absl::StatusOr<DataBundle> ReadImageFolder(const std::string& dir_text,
                                           int size,
                                           const std::string& cache_dir) {
  const fs::path dir(dir_text);
  const std::string who = absl::StrCat("data_path ", dir_text);
  std::error_code ec;
  if (!fs::is_directory(dir / "train", ec) ||
      !fs::is_directory(dir / "test", ec)) {
    return absl::NotFoundError(absl::StrCat(
        who, ": an image folder holds train/<class>/ and test/<class>/ "
             "(and optionally val/<class>/) of PNG or JPEG files"));
  }
  std::vector<std::string> classes;
  for (const auto& entry : fs::directory_iterator(dir / "train", ec))
    if (entry.is_directory()) classes.push_back(entry.path().filename().string());
  std::sort(classes.begin(), classes.end());
  if (classes.size() < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        who, ": train/ has ", classes.size(),
        " class subfolders; a dataset needs 2 or more"));
  }
  MIXCAL_ASSIGN_OR_RETURN(Listing train, List(dir / "train", classes, who));
  MIXCAL_ASSIGN_OR_RETURN(Listing test, List(dir / "test", classes, who));
  Listing val;
  if (fs::is_directory(dir / "val", ec)) {
    MIXCAL_ASSIGN_OR_RETURN(val, List(dir / "val", classes, who));
  }
  for (size_t c = 0; c < classes.size(); ++c) {
    const bool any = std::any_of(
        train.files.begin(), train.files.end(),
        [&](const auto& f) { return f.second == static_cast<int>(c); });
    if (!any) {
      return absl::InvalidArgumentError(
          absl::StrCat(who, ": train/", classes[c],
                       " holds no .png, .jpg or .jpeg file"));
    }
  }
  if (test.files.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": test/ holds no image"));
  }

  DataBundle b;
  b.classes = static_cast<int>(classes.size());
  b.height = b.width = size;
  // Decoded once: later jobs on this worker read the cache file.
  const std::string cache =
      cache_dir.empty()
          ? ""
          : (fs::path(cache_dir) /
             absl::StrCat("decoded-", ContentKey({&train, &test, &val}, size),
                          ".pt"))
                .string();
  if (!cache.empty() && fs::exists(cache, ec)) {
    try {
      torch::serialize::InputArchive in;
      in.load_from(cache);
      at::Tensor grey;
      for (auto [name, split] :
           {std::pair<const char*, TensorDataset*>{"train", &b.train},
            {"test", &b.test},
            {"val", &b.val}}) {
        c10::IValue present;
        in.read(absl::StrCat(name, "_present"), present);
        if (!present.toBool()) continue;
        in.read(absl::StrCat(name, "_x"), split->images);
        in.read(absl::StrCat(name, "_y"), split->labels);
      }
      b.channels = static_cast<int>(b.train.images.size(1));
      return b;
    } catch (const c10::Error&) {
      fs::remove(cache, ec);  // damaged: decode again
      b.train = b.test = b.val = TensorDataset();
    }
  }
  bool all_grey = true;
  MIXCAL_ASSIGN_OR_RETURN(b.train, DecodeSplit(train, size, &all_grey));
  MIXCAL_ASSIGN_OR_RETURN(b.test, DecodeSplit(test, size, &all_grey));
  if (!val.files.empty()) {
    MIXCAL_ASSIGN_OR_RETURN(b.val, DecodeSplit(val, size, &all_grey));
  }
  if (all_grey) {
    for (TensorDataset* s : {&b.train, &b.test, &b.val})
      if (s->images.defined()) s->images = s->images.slice(1, 0, 1).contiguous();
  }
  b.channels = all_grey ? 1 : 3;
  if (!cache.empty()) {
    try {
      fs::create_directories(cache_dir, ec);
      torch::serialize::OutputArchive out;
      for (auto [name, split] :
           {std::pair<const char*, TensorDataset*>{"train", &b.train},
            {"test", &b.test},
            {"val", &b.val}}) {
        const bool present = split->images.defined();
        out.write(absl::StrCat(name, "_present"), c10::IValue(present));
        if (!present) continue;
        out.write(absl::StrCat(name, "_x"), split->images);
        out.write(absl::StrCat(name, "_y"), split->labels);
      }
      const std::string tmp = cache + ".tmp";
      out.save_to(tmp);
      fs::rename(tmp, cache, ec);
    } catch (const c10::Error&) {
      // A cache that cannot be written costs the next job a decode only.
    }
  }
  return b;
}

}  // namespace mixcal::core
