#ifndef MIXCAL_WORKER_CORE_NPZ_H_
#define MIXCAL_WORKER_CORE_NPZ_H_

// NumPy's .npz files (numpy.savez and numpy.savez_compressed): a ZIP
// archive (ZIP64 as NumPy writes it) of .npy arrays. Torch-free: arrays
// come back as their dtype, shape and little-endian bytes; stored (not
// compressed) members are memory-mapped, not copied.
//
//   MIXCAL_ASSIGN_OR_RETURN(NpzFile npz, NpzFile::Open("data.npz"));
//   MIXCAL_ASSIGN_OR_RETURN(NpyArray x, npz.Read("x_train"));
//   // x.dtype == "uint8", x.shape == {60000, 28, 28}, x.data() ...
//
// Errors name the file and the array: InvalidArgument for what is not an
// .npz NumPy writes (not a ZIP, an encrypted or otherwise compressed
// member, a Fortran-order or object array, a dtype other than bool,
// (u)int8/16/32/64, float16/32/64, big-endian data), NotFound for an array
// the file lacks (listing those it has), DataLoss for a damaged archive.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mixcal::core {

class NpyArray {
 public:
  std::string dtype;           // "uint8", "int64", "float32", ...
  std::vector<int64_t> shape;  // empty for a scalar
  size_t item_size = 0;        // bytes per element
  int64_t count() const;       // elements: the product of shape
  // count() * item_size bytes, little-endian, C order.
  const char* data() const { return data_; }

 private:
  friend class NpzFile;
  const char* data_ = nullptr;
  std::shared_ptr<const void> owner_;  // a mapping or a buffer
};

class NpzFile {
 public:
  static absl::StatusOr<NpzFile> Open(const std::string& path);
  // The arrays' names ("x_train" for member "x_train.npy"), in file order.
  std::vector<std::string> Names() const;
  bool Has(absl::string_view name) const;
  absl::StatusOr<NpyArray> Read(absl::string_view name) const;

 private:
  struct Member {
    std::string name;
    uint16_t method = 0;  // 0 stored, 8 deflated
    uint64_t compressed = 0, size = 0, header_offset = 0;
  };
  std::string path_;
  std::shared_ptr<const void> map_;  // the whole file, mapped
  const char* base_ = nullptr;
  uint64_t length_ = 0;
  std::vector<Member> members_;
};

}  // namespace mixcal::core

#endif  // MIXCAL_WORKER_CORE_NPZ_H_
