#include "storage/env.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "storage/internal/sqlite.h"

namespace mixcal::storage {
namespace {

int OpenForAppending(const std::string& path) {
  return ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

class PosixAppendFile : public AppendFile {
 public:
  PosixAppendFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixAppendFile() override {
    ::close(fd_.load());
    for (int fd : retired_) ::close(fd);
  }

  absl::StatusOr<int64_t> Append(absl::string_view a,
                                 absl::string_view b) override {
    const size_t bytes = a.size() + b.size();
    iovec parts[2] = {{const_cast<char*>(a.data()), a.size()},
                      {const_cast<char*>(b.data()), b.size()}};
    absl::MutexLock lock(&mu_);
    if (absl::Status s = FollowPathLocked(); !s.ok()) return s;
    const int fd = fd_.load();
    const ssize_t wrote = ::writev(fd, parts, 2);
    if (wrote < 0 || static_cast<size_t>(wrote) != bytes) {
      const int err = wrote < 0 ? errno : ENOSPC;  // short: the disk filled
      const std::string msg =
          absl::StrCat("cannot append to ", path_, ": ", std::strerror(err));
      if (err == ENOSPC || err == EDQUOT) return StorageFullError(msg);
      return absl::InternalError(msg);
    }
    // O_APPEND leaves the offset at the end of this write, whoever else
    // appended before it.
    const off_t end = ::lseek(fd, 0, SEEK_CUR);
    if (end < 0) {
      return absl::InternalError(absl::StrCat("cannot find the end of ", path_,
                                              ": ", std::strerror(errno)));
    }
    return static_cast<int64_t>(end) - static_cast<int64_t>(bytes);
  }

  absl::StatusOr<size_t> ReadAt(int64_t offset, char* out,
                                size_t n) const override {
    const int fd = fd_.load();
    size_t done = 0;
    while (done < n) {
      const ssize_t got =
          ::pread(fd, out + done, n - done, static_cast<off_t>(offset + done));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) {
        return absl::InternalError(
            absl::StrCat("cannot read ", path_, ": ", std::strerror(errno)));
      }
      if (got == 0) break;  // the end of the file
      done += static_cast<size_t>(got);
    }
    return done;
  }

  const std::string& path() const override { return path_; }

 private:
  // The file was deleted or replaced while open (someone cleaning up by
  // hand): bytes appended to the open one would vanish at the next restart
  // and the rows pointing at them with it. Said on stderr, and appends go
  // to a new file at the path from now on; the rows of the old one read as
  // DataLoss (their hashes do not match), as after a restart.
  absl::Status FollowPathLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    struct stat open_st {}, path_st {};
    const int fd = fd_.load();
    if (::fstat(fd, &open_st) != 0) return absl::OkStatus();
    if (::stat(path_.c_str(), &path_st) == 0 &&
        path_st.st_ino == open_st.st_ino && path_st.st_dev == open_st.st_dev) {
      return absl::OkStatus();
    }
    const int fresh = OpenForAppending(path_);
    if (fresh < 0) {
      return absl::InternalError(
          absl::StrCat(path_, " was deleted or replaced while in use, and a "
                       "new one cannot be created: ", std::strerror(errno)));
    }
    std::fprintf(stderr,
                 "mixcal: %s was deleted or replaced while in use: the kept "
                 "predictions stored in it before are lost (reading them says "
                 "so); new ones go to a new file\n",
                 path_.c_str());
    retired_.push_back(fd);  // a reader may still hold it
    fd_.store(fresh);
    return absl::OkStatus();
  }

  std::atomic<int> fd_;
  const std::string path_;
  absl::Mutex mu_;  // the write and the offset read after it go together
  std::vector<int> retired_ ABSL_GUARDED_BY(mu_);
};

class PosixEnv : public Env {
 public:
  absl::StatusOr<std::unique_ptr<AppendFile>> OpenAppendFile(
      const std::string& path) override {
    const int fd = OpenForAppending(path);
    if (fd < 0) {
      return absl::PermissionDeniedError(
          absl::StrCat("cannot open ", path, " (", std::strerror(errno), ")"));
    }
    return std::make_unique<PosixAppendFile>(fd, path);
  }
};

}  // namespace

Env* DefaultEnv() {
  static Env* const env = new PosixEnv();
  return env;
}

absl::Status StorageFullError(absl::string_view message) {
  absl::Status full = absl::ResourceExhaustedError(
      absl::StrCat(message, "; writes are refused until space is freed"));
  full.SetPayload(kStorageFullPayload, absl::Cord("full"));
  return full;
}

}  // namespace mixcal::storage
