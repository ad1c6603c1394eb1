// ReadImageFolder (data.h).

#include "absl/strings/str_cat.h"
#include "worker/core/data.h"

namespace mixcal::core {

absl::StatusOr<DataBundle> ReadImageFolder(const std::string& dir, int size) {
  return absl::UnimplementedError(
      absl::StrCat("data_file ", dir, ": image folders are not read yet"));
}

}  // namespace mixcal::core
