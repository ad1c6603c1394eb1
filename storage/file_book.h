#ifndef MIXCAL_STORAGE_FILE_BOOK_H_
#define MIXCAL_STORAGE_FILE_BOOK_H_

// Files that sweeps use and the workers need not have on their disks (a
// TorchScript model, a dataset), stored once by their SHA-256: the bytes
// in "<db>.files/<sha256>" (mode 0600), a row in the files table. It owns
// both. An upload is written to a temporary file while its SHA-256 is
// computed, and kept only when its size and hash are the ones declared;
// a file stored already is not stored twice.
//
//   MIXCAL_ASSIGN_OR_RETURN(auto up, store->files().BeginUpload(first, who,
//   limit)); MIXCAL_RETURN_IF_ERROR(up->Append(chunk.data()));   // each chunk
//   MIXCAL_ASSIGN_OR_RETURN(v1::StoredFile f, up->Finish());
//
// Thread-safe (an upload itself is used by one thread). Errors:
// InvalidArgument (a bad kind, name, size or hash, or bytes that do not
// match them, naming the field), NotFound (no such file), FailedPrecondition
// (a store in memory keeps no files), ResourceExhausted (a full disk,
// IsStorageFull), DataLoss (a stored file missing or of the wrong size),
// Internal.

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "mixcal/v1/files.pb.h"

namespace mixcal::storage {

class Connection;

// The largest file an upload may declare unless the coordinator says
// otherwise.
inline constexpr uint64_t kDefaultMaxFileBytes = uint64_t{512} << 20;

class FileUpload {
 public:
  virtual ~FileUpload() = default;  // an unfinished upload leaves nothing
  // InvalidArgument once more bytes arrive than the size declared.
  virtual absl::Status Append(absl::string_view bytes) = 0;
  // Checks the size and hash against those declared and stores the file.
  virtual absl::StatusOr<v1::StoredFile> Finish() = 0;
};

class FileBook {
 public:
  // `dir` holds the files' bytes; empty for a store in memory.
  FileBook(Connection& c, std::string dir) : c_(c), dir_(std::move(dir)) {}
  FileBook(const FileBook&) = delete;
  FileBook& operator=(const FileBook&) = delete;

  // Checks the first chunk's kind (model | data), name (UTF-8, at most 256
  // bytes), size (1 to max_bytes) and sha256 (64 lowercase hex digits),
  // and starts writing. Its data, if any, is not appended yet.
  absl::StatusOr<std::unique_ptr<FileUpload>> BeginUpload(
      const v1::FileChunk& first, const std::string& submitter,
      uint64_t max_bytes);

  // Oldest first; `kind` empty for every kind (else model | data).
  absl::StatusOr<std::vector<v1::StoredFile>> ListFiles(
      const std::string& kind);

  // A stored file's row and the path of its bytes, checked to be there
  // with the stored size.
  absl::StatusOr<std::pair<v1::StoredFile, std::string>> Find(
      const std::string& sha256);

 private:
  friend class FileUploadImpl;
  // Inserts the row of a file whose bytes are in place; returns the stored
  // row (existed when it was stored before).
  absl::StatusOr<v1::StoredFile> Record(const v1::StoredFile& file);

  Connection& c_;
  const std::string dir_;
};

}  // namespace mixcal::storage

#endif  // MIXCAL_STORAGE_FILE_BOOK_H_
