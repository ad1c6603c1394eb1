#include "storage/internal/blob_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "storage/internal/sqlite.h"

namespace mixcal::storage {
namespace {

constexpr uint64_t kMul[4] = {0x9e3779b97f4a7c15ULL, 0xc2b2ae3d27d4eb4fULL,
                              0x165667b19e3779f9ULL, 0xff51afd7ed558ccdULL};

uint64_t Mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

// Four lanes over 32-byte blocks; a partial block waits in `pending`.
struct Hasher {
  uint64_t lane[4] = {1, 2, 3, 4};
  uint64_t length = 0;
  unsigned char pending[32];
  size_t held = 0;

  void Block(const unsigned char* p) {
    for (int i = 0; i < 4; ++i) {
      uint64_t w;
      std::memcpy(&w, p + 8 * i, 8);
      lane[i] = (lane[i] ^ w) * kMul[i];
      lane[i] ^= lane[i] >> 29;
    }
  }
  void Add(absl::string_view s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    size_t n = s.size();
    length += n;
    while (held > 0 && n > 0) {
      pending[held++] = *p++;
      --n;
      if (held == 32) {
        Block(pending);
        held = 0;
      }
    }
    if (n == 0) return;  // still holding a partial block, or nothing
    for (; n >= 32; n -= 32, p += 32) Block(p);
    std::memcpy(pending, p, n);
    held = n;
  }
  uint64_t Finish() {
    std::memset(pending + held, 0, 32 - held);
    Block(pending);
    uint64_t h = length;
    for (int i = 0; i < 4; ++i) h = Mix(h ^ lane[i]) * kMul[i];
    return Mix(h);
  }
};

}  // namespace

uint64_t BlobHash(absl::string_view a, absl::string_view b) {
  Hasher h;
  h.Add(a);
  h.Add(b);
  return h.Finish();
}

absl::StatusOr<std::unique_ptr<BlobFile>> BlobFile::Open(
    const std::string& path) {
  const int fd =
      ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        "cannot open the predictions file ", path, " (", std::strerror(errno),
        ")"));
  }
  return std::unique_ptr<BlobFile>(new BlobFile(fd, path));
}

BlobFile::~BlobFile() { ::close(fd_); }

absl::StatusOr<BlobRef> BlobFile::Append(absl::string_view a,
                                         absl::string_view b) {
  BlobRef ref;
  ref.bytes = static_cast<int64_t>(a.size() + b.size());
  ref.hash = BlobHash(a, b);
  iovec parts[2] = {{const_cast<char*>(a.data()), a.size()},
                    {const_cast<char*>(b.data()), b.size()}};
  absl::MutexLock lock(&mu_);
  const ssize_t wrote = ::writev(fd_, parts, 2);
  if (wrote != ref.bytes) {
    const int err = wrote < 0 ? errno : ENOSPC;  // short: the disk filled
    std::string msg = absl::StrCat("cannot append to the predictions file ",
                                   path_, ": ", std::strerror(err));
    if (err == ENOSPC || err == EDQUOT) {
      absl::Status full = absl::ResourceExhaustedError(absl::StrCat(
          msg, "; writes are refused until space is freed"));
      full.SetPayload(kStorageFullPayload, absl::Cord("full"));
      return full;
    }
    return absl::InternalError(msg);
  }
  // O_APPEND leaves the offset at the end of this write, whoever else
  // appended before it.
  const off_t end = ::lseek(fd_, 0, SEEK_CUR);
  if (end < 0) {
    return absl::InternalError(absl::StrCat("cannot find the end of ", path_,
                                            ": ", std::strerror(errno)));
  }
  ref.offset = static_cast<int64_t>(end) - ref.bytes;
  return ref;
}

absl::StatusOr<std::string> BlobFile::Read(const BlobRef& ref,
                                           absl::string_view what) const {
  std::string out(static_cast<size_t>(ref.bytes), '\0');
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t got = ::pread(fd_, out.data() + done, out.size() - done,
                                static_cast<off_t>(ref.offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      return absl::DataLossError(absl::StrCat(
          what, ": the predictions file ", path_, " ends before bytes ",
          ref.offset, "..", ref.offset + ref.bytes,
          got < 0 ? absl::StrCat(" (", std::strerror(errno), ")") : "",
          " (lost in a crash of the machine, or the file was replaced)"));
    }
    done += static_cast<size_t>(got);
  }
  if (BlobHash(out) != ref.hash) {
    return absl::DataLossError(absl::StrCat(
        what, ": bytes ", ref.offset, "..", ref.offset + ref.bytes,
        " of the predictions file ", path_,
        " differ from what was written (damaged, or lost in a crash of the "
        "machine)"));
  }
  return out;
}

}  // namespace mixcal::storage
