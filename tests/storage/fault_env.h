#ifndef MIXCAL_TESTS_STORAGE_FAULT_ENV_H_
#define MIXCAL_TESTS_STORAGE_FAULT_ENV_H_

// An Env whose files are the system's until told to fail: set_full(true)
// makes every append fail as a full disk does (StorageFullError), as
// leveldb's ErrorEnv does for its tests.

#include <atomic>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "storage/env.h"

namespace mixcal::storage {

class FullDiskEnv : public Env {
 public:
  void set_full(bool full) { full_->store(full); }

  absl::StatusOr<std::unique_ptr<AppendFile>> OpenAppendFile(
      const std::string& path) override {
    absl::StatusOr<std::unique_ptr<AppendFile>> f =
        DefaultEnv()->OpenAppendFile(path);
    if (!f.ok()) return f.status();
    return std::unique_ptr<AppendFile>(new File(*std::move(f), full_));
  }

 private:
  class File : public AppendFile {
   public:
    File(std::unique_ptr<AppendFile> base,
         std::shared_ptr<std::atomic<bool>> full)
        : base_(std::move(base)), full_(std::move(full)) {}
    absl::StatusOr<int64_t> Append(absl::string_view a,
                                   absl::string_view b) override {
      if (full_->load()) {
        return StorageFullError(absl::StrCat("cannot append to ", path(),
                                             ": No space left on device"));
      }
      return base_->Append(a, b);
    }
    absl::StatusOr<size_t> ReadAt(int64_t offset, char* out,
                                  size_t n) const override {
      return base_->ReadAt(offset, out, n);
    }
    const std::string& path() const override { return base_->path(); }

   private:
    const std::unique_ptr<AppendFile> base_;
    const std::shared_ptr<std::atomic<bool>> full_;
  };

  // Shared with the files opened, which may outlive a moved-from Env.
  const std::shared_ptr<std::atomic<bool>> full_ =
      std::make_shared<std::atomic<bool>>(false);
};

}  // namespace mixcal::storage

#endif  // MIXCAL_TESTS_STORAGE_FAULT_ENV_H_
