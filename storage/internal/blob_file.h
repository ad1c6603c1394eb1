#ifndef MIXCAL_STORAGE_INTERNAL_BLOB_FILE_H_
#define MIXCAL_STORAGE_INTERNAL_BLOB_FILE_H_

// The kept predictions' bytes, beside the SQLite file in "<db>.predictions":
// appended once, where SQLite's WAL would write them twice (the log, then
// the checkpoint) at a quarter of a plain file's speed (docs/storage.md).
// The row in `predictions` holds where they are and a hash of them, and is
// committed after the bytes are written: a killed process loses nothing; a
// power loss can lose the tail of either file, and a row whose bytes did
// not survive reads as DataLoss naming the job.

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "storage/env.h"

namespace mixcal::storage {

struct BlobRef {
  int64_t offset = 0;
  int64_t bytes = 0;
  uint64_t hash = 0;
};

// A 64-bit hash of the bytes (four multiply-xor lanes over 8-byte words):
// it detects torn or lost writes, not tampering. Not zlib's CRC-32, which
// the CLI uses: when the report writer's one thread hashed (before
// Store::PrepareReport moved it to the receiving threads) it took about
// three times as long (0.056 ms per 240 KB) and the report stream measured
// 0.84-0.90 of its throughput with it (3 runs) against a median of 0.915 with
// this (6 runs, 0.79-0.94; docs/benchmarks.md).
uint64_t BlobHash(absl::string_view a, absl::string_view b = {});

class BlobFile {
 public:
  // Opens or creates `path` (mode 0600) through `env`, appending.
  static absl::StatusOr<std::unique_ptr<BlobFile>> Open(
      Env* env, const std::string& path);
  BlobFile(const BlobFile&) = delete;
  BlobFile& operator=(const BlobFile&) = delete;

  // Appends a then b in one write (never over another process's bytes).
  // No space left is StorageFullError, like SQLite's.
  absl::StatusOr<BlobRef> Append(absl::string_view a, absl::string_view b);

  // The bytes `ref` names, checked against its hash; DataLoss, naming the
  // file and `what`, when they are missing or differ.
  absl::StatusOr<std::string> Read(const BlobRef& ref,
                                   absl::string_view what) const;

  const std::string& path() const { return file_->path(); }

 private:
  explicit BlobFile(std::unique_ptr<AppendFile> file)
      : file_(std::move(file)) {}
  const std::unique_ptr<AppendFile> file_;
};

}  // namespace mixcal::storage

#endif  // MIXCAL_STORAGE_INTERNAL_BLOB_FILE_H_
