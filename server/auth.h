#ifndef MIXCAL_SERVER_AUTH_H_
#define MIXCAL_SERVER_AUTH_H_

// Bearer tokens with one role each (DESIGN.md section 6).
//
// Tokens file: one token per line, "TOKEN ROLE [NAME]"; '#' starts a comment.
// Roles: admin (everything), submit (read, submit, cancel, retry), read (the
// Get/List/Query/Summarize/Watch calls), worker (WorkerService only).
// Clients send "authorization: Bearer TOKEN" metadata.

#include <utility>
#include <vector>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpcpp/server_context.h"

namespace mixcal::server {

enum class Role { kAdmin, kSubmit, kRead, kWorker };

// What a call needs.
enum class Permission { kRead, kWrite, kWorker, kAdmin };

class Authenticator {
 public:
  // Everything open: no tokens file (only allowed on loopback).
  static Authenticator Open() { return Authenticator(); }
  // InvalidArgument naming the line when the file is malformed; NotFound
  // when missing.
  static absl::StatusOr<Authenticator> FromFile(const std::string& path);
  static absl::StatusOr<Authenticator> FromText(const std::string& text,
                                                const std::string& origin);

  bool open() const { return tokens_.empty(); }

  // Set by FromFile when the file can be read by group or others (the
  // coordinator prints it at start-up); empty otherwise.
  const std::string& warning() const { return warning_; }

  // OK, UNAUTHENTICATED (no or unknown token) or PERMISSION_DENIED (the
  // role may not do this).
  absl::Status Check(const grpc::ServerContextBase& context,
                     Permission needed) const;

  // Who makes the call, for quotas and the record: the NAME of the token's
  // line ("token N" for line N's unnamed token), or "local" when the
  // coordinator is open; "" for a token it does not know.
  std::string Who(const grpc::ServerContextBase& context) const;
  // Whether the caller may change anyone's sweeps: an admin token, or any
  // caller of an open coordinator.
  bool IsAdmin(const grpc::ServerContextBase& context) const;

 private:
  // SHA-256 of each token with its role. A presented token is hashed and
  // compared with every entry in constant time, so neither the comparison
  // nor the lookup tells an attacker how much of a guess was right.
  struct Entry {
    std::string digest;
    Role role;
    std::string name;
  };
  // The index of the presented token in tokens_, -1 when none matches;
  // Unauthenticated when the metadata is missing or malformed.
  absl::StatusOr<int> Find(const grpc::ServerContextBase& context) const;

  std::vector<Entry> tokens_;
  std::string warning_;
};

}  // namespace mixcal::server

#endif  // MIXCAL_SERVER_AUTH_H_
