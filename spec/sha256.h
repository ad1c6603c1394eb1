#ifndef MIXCAL_SPEC_SHA256_H_
#define MIXCAL_SPEC_SHA256_H_

// The name an uploaded file goes by (docs/files.md): the SHA-256 of its
// bytes as 64 lowercase hex digits. The client, the coordinator's file book
// and the worker's cache compute and check it the same way.
//
//   Sha256 h;  h.Update(chunk1);  h.Update(chunk2);  std::string name =
//   h.HexDigest();

#include <string>

#include "absl/strings/string_view.h"

namespace mixcal::spec {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(absl::string_view bytes);
  // The digest of everything given; call once, last.
  std::string HexDigest();

 private:
  void* ctx_;  // OpenSSL's EVP_MD_CTX
};

std::string Sha256Hex(absl::string_view bytes);

// Whether `s` is 64 lowercase hex digits.
bool IsSha256Hex(absl::string_view s);

}  // namespace mixcal::spec

#endif  // MIXCAL_SPEC_SHA256_H_
