#include "server/auth.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/file.h"
#include "base/status_macros.h"

namespace mixcal::server {

absl::StatusOr<Authenticator> Authenticator::FromFile(const std::string& path) {
  MIXCAL_ASSIGN_OR_RETURN(std::string text, ReadFile(path, "tokens file"));
  return FromText(text, path);
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
    a.tokens_[std::string(words[0])] = r;
  }
  if (a.tokens_.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(origin, ": holds no tokens"));
  }
  return a;
}

absl::Status Authenticator::Check(const grpc::ServerContextBase& context,
                                  Permission needed) const {
  if (open()) return absl::OkStatus();
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
  auto tok = tokens_.find(std::string(value.substr(kBearer.size())));
  if (tok == tokens_.end()) return absl::UnauthenticatedError("unknown token");
  const Role role = tok->second;
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
  }
  if (!allowed) {
    static const char* kNames[] = {"admin", "submit", "read", "worker"};
    static const char* kNeeds[] = {"read", "submit", "worker"};
    return absl::PermissionDeniedError(
        absl::StrCat("role ", kNames[static_cast<int>(role)], " may not make ",
                     kNeeds[static_cast<int>(needed)], " calls"));
  }
  return absl::OkStatus();
}

}  // namespace mixcal::server
