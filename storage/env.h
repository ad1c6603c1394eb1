#ifndef MIXCAL_STORAGE_ENV_H_
#define MIXCAL_STORAGE_ENV_H_

// The files the store writes beside its SQLite database, behind an
// interface, so that tests inject faults (a full disk, a failing read)
// through a stand-in Env instead of through testing setters (leveldb's
// Env). Time comes from StoreOptions::clock (base/clock.h).
//
//   FullDiskEnv env;                 // tests/storage/fault_env.h
//   auto store = Store::Open({.path = p, .env = &env});
//   env.set_full(true);              // every append now fails as ENOSPC

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mixcal::storage {

// A file written only at its end and read anywhere. Thread-safe.
class AppendFile {
 public:
  virtual ~AppendFile() = default;
  // Writes `a` then `b` at the end in one write, never over bytes another
  // process appended, and returns the offset where `a` starts. A full disk
  // is StorageFullError (IsStorageFull in store.h); other failures Internal,
  // naming the file.
  virtual absl::StatusOr<int64_t> Append(absl::string_view a,
                                         absl::string_view b) = 0;
  // Reads up to `n` bytes at `offset` into `out`: fewer only where the file
  // ends. Internal, naming the file, when the read fails.
  virtual absl::StatusOr<size_t> ReadAt(int64_t offset, char* out,
                                        size_t n) const = 0;
  virtual const std::string& path() const = 0;
};

class Env {
 public:
  virtual ~Env() = default;
  // Opens or creates `path` (mode 0600) for appending. PermissionDenied,
  // naming the file, when it cannot be opened.
  virtual absl::StatusOr<std::unique_ptr<AppendFile>> OpenAppendFile(
      const std::string& path) = 0;
};

// The operating system's files; never destroyed.
Env* DefaultEnv();

// ResourceExhausted with the payload IsStorageFull recognises: what a write
// on a full disk (ENOSPC, EDQUOT) returns, from SQLite or from an Env.
absl::Status StorageFullError(absl::string_view message);

}  // namespace mixcal::storage

#endif  // MIXCAL_STORAGE_ENV_H_
