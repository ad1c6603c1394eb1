#include "server/auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <sys/stat.h>

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "base/file.h"
#include "base/status_macros.h"
#include "base/utf8.h"

namespace mixcal::server {
namespace {

std::string Digest(absl::string_view token) {
  unsigned char out[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(),
         out);
  return std::string(reinterpret_cast<const char*>(out), sizeof out);
}

}  // namespace

absl::StatusOr<Authenticator> Authenticator::FromFile(const std::string& path) {
  MIXCAL_ASSIGN_OR_RETURN(std::string text, ReadFile(path, "tokens file"));
  MIXCAL_ASSIGN_OR_RETURN(Authenticator a, FromText(text, path));
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    a.warning_ = absl::StrCat(
        "tokens file ", path, " can be read by other users (mode ",
        absl::StrFormat("%03o", st.st_mode & 0777), "); chmod 600 it");
  }
  return a;
}

absl::StatusOr<Authenticator> Authenticator::FromText(
    const std::string& text, const std::string& origin) {
  Authenticator a;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = line.substr(0, line.find('#'));
    std::vector<absl::string_view> words =
        absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (words.empty()) continue;
    if (words.size() < 2 || words.size() > 3) {
      return absl::InvalidArgumentError(absl::StrCat(
          origin, ":", line_no, ": expected \"TOKEN ROLE [NAME]\", got ",
          words.size(), " words"));
    }
    if (words[0].size() < 16) {
      return absl::InvalidArgumentError(absl::StrCat(
          origin, ":", line_no, ": a token must be at least 16 characters"));
    }
    if (words.size() == 3 && words[2].size() > 64) {
      return absl::InvalidArgumentError(absl::StrCat(
          origin, ":", line_no, ": a name must be at most 64 characters"));
    }
    // A name is stored with every sweep its token submits and sent back to
    // every client that lists them: text, without control characters.
    if (words.size() == 3 &&
        (!IsValidUtf8(words[2]) ||
         std::any_of(words[2].begin(), words[2].end(), [](char c) {
           return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
         }))) {
      return absl::InvalidArgumentError(absl::StrCat(
          origin, ":", line_no,
          ": a name must be UTF-8 text without control characters (save the "
          "file as UTF-8)"));
    }
    const std::string role = absl::AsciiStrToLower(words[1]);
    Role r;
    if (role == "admin")
      r = Role::kAdmin;
    else if (role == "submit")
      r = Role::kSubmit;
    else if (role == "read")
      r = Role::kRead;
    else if (role == "worker")
      r = Role::kWorker;
    else {
      return absl::InvalidArgumentError(
          absl::StrCat(origin, ":", line_no,
                       ": role must be one of admin|submit|read|worker, got \"",
                       words[1], "\""));
    }
    a.tokens_.push_back(
        {Digest(words[0]), r,
         words.size() == 3 ? std::string(words[2])
                           : absl::StrCat("token ", line_no)});
  }
  if (a.tokens_.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(origin, ": holds no tokens"));
  }
  return a;
}

absl::StatusOr<int> Authenticator::Find(
    const grpc::ServerContextBase& context) const {
  const auto& md = context.client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) {
    return absl::UnauthenticatedError(
        "missing \"authorization: Bearer TOKEN\" metadata");
  }
  absl::string_view value(it->second.data(), it->second.size());
  constexpr absl::string_view kBearer = "Bearer ";
  if (value.substr(0, kBearer.size()) != kBearer) {
    return absl::UnauthenticatedError(
        "authorization metadata must be \"Bearer TOKEN\"");
  }
  const std::string digest = Digest(value.substr(kBearer.size()));
  int found = -1;
  for (size_t i = 0; i < tokens_.size(); ++i) {
    // No early exit: every entry is compared, in constant time.
    const bool same = CRYPTO_memcmp(digest.data(), tokens_[i].digest.data(),
                                    digest.size()) == 0;
    found = same ? static_cast<int>(i) : found;
  }
  return found;
}

bool Authenticator::IsAdmin(const grpc::ServerContextBase& context) const {
  if (open()) return true;
  absl::StatusOr<int> found = Find(context);
  return found.ok() && *found >= 0 && tokens_[*found].role == Role::kAdmin;
}

std::string Authenticator::Who(const grpc::ServerContextBase& context) const {
  if (open()) return "local";
  absl::StatusOr<int> found = Find(context);
  return found.ok() && *found >= 0 ? tokens_[*found].name : "";
}

absl::Status Authenticator::Check(const grpc::ServerContextBase& context,
                                  Permission needed) const {
  if (open()) return absl::OkStatus();
  MIXCAL_ASSIGN_OR_RETURN(const int found, Find(context));
  if (found < 0) return absl::UnauthenticatedError("unknown token");
  const Role role = tokens_[found].role;
  bool allowed = false;
  switch (needed) {
    case Permission::kRead:
      allowed =
          role == Role::kAdmin || role == Role::kSubmit || role == Role::kRead;
      break;
    case Permission::kWrite:
      allowed = role == Role::kAdmin || role == Role::kSubmit;
      break;
    case Permission::kWorker:
      allowed = role == Role::kAdmin || role == Role::kWorker;
      break;
    case Permission::kAdmin:
      allowed = role == Role::kAdmin;
      break;
  }
  if (!allowed) {
    static const char* kNames[] = {"admin", "submit", "read", "worker"};
    static const char* kNeeds[] = {"read", "submit", "worker", "admin"};
    return absl::PermissionDeniedError(
        absl::StrCat("role ", kNames[static_cast<int>(role)], " may not make ",
                     kNeeds[static_cast<int>(needed)], " calls"));
  }
  return absl::OkStatus();
}

}  // namespace mixcal::server
