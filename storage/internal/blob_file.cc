#include "storage/internal/blob_file.h"

#include <cstring>
#include <memory>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

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

namespace {
// `s` with "the predictions file: " before its message, payloads kept (the
// storage-full mark among them).
absl::Status Named(const absl::Status& s) {
  absl::Status out(s.code(),
                   absl::StrCat("the predictions file: ", s.message()));
  s.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) {
    out.SetPayload(url, payload);
  });
  return out;
}
}  // namespace

absl::StatusOr<std::unique_ptr<BlobFile>> BlobFile::Open(
    Env* env, const std::string& path) {
  absl::StatusOr<std::unique_ptr<AppendFile>> file = env->OpenAppendFile(path);
  if (!file.ok()) return Named(file.status());
  return std::unique_ptr<BlobFile>(new BlobFile(*std::move(file)));
}

absl::StatusOr<BlobRef> BlobFile::Append(absl::string_view a,
                                         absl::string_view b) {
  BlobRef ref;
  ref.bytes = static_cast<int64_t>(a.size() + b.size());
  ref.hash = BlobHash(a, b);
  absl::StatusOr<int64_t> offset = file_->Append(a, b);
  if (!offset.ok()) return Named(offset.status());
  ref.offset = *offset;
  return ref;
}

absl::StatusOr<std::string> BlobFile::Read(const BlobRef& ref,
                                           absl::string_view what) const {
  std::string out(static_cast<size_t>(ref.bytes), '\0');
  absl::StatusOr<size_t> got =
      file_->ReadAt(ref.offset, out.data(), out.size());
  if (!got.ok() || *got != out.size()) {
    return absl::DataLossError(absl::StrCat(
        what, ": the predictions file ", path(), " ends before bytes ",
        ref.offset, "..", ref.offset + ref.bytes,
        got.ok() ? "" : absl::StrCat(" (", got.status().message(), ")"),
        " (lost in a crash of the machine, or the file was replaced)"));
  }
  if (BlobHash(out) != ref.hash) {
    return absl::DataLossError(absl::StrCat(
        what, ": bytes ", ref.offset, "..", ref.offset + ref.bytes,
        " of the predictions file ", path(),
        " differ from what was written (damaged, or lost in a crash of the "
        "machine)"));
  }
  return out;
}

}  // namespace mixcal::storage
