#ifndef MIXCAL_BASE_FILE_LOCK_H_
#define MIXCAL_BASE_FILE_LOCK_H_

// An exclusive lock on a file for as long as the object lives (flock(2)):
// one process, or one holder within a process, at a time; the kernel drops
// it when the process dies, killed or not, so a crash never leaves a stale
// lock behind.
//
//   MIXCAL_ASSIGN_OR_RETURN(FileLock lock,
//   FileLock::Acquire("mixcal.db.lock"));

#include <string>

#include "absl/status/statusor.h"

namespace mixcal {

class FileLock {
 public:
  // Creates `path` (mode 0600) if missing and locks it without waiting.
  // FailedPrecondition, naming the file, when another holder has it;
  // PermissionDenied when it cannot be opened.
  static absl::StatusOr<FileLock> Acquire(const std::string& path);

  FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace mixcal

#endif  // MIXCAL_BASE_FILE_LOCK_H_
