#ifndef MIXCAL_SERVER_GRPC_STATUS_H_
#define MIXCAL_SERVER_GRPC_STATUS_H_

// The edge between absl::Status and gRPC (STYLE.md 7): handlers call library
// code and convert here; nothing below a handler knows gRPC.

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/support/status.h"
#include "mixcal/v1/jobs.pb.h"

namespace mixcal::server {

// Logs `s` when it is the server's own trouble rather than the caller's
// (a full disk, DataLoss, Internal), so that the coordinator's log says what
// clients see: at most one line per code every 10 s, with a count of the
// lines left out. Anything else (a bad request, a quota) is not logged.
void NoteServerError(const absl::Status& s);

// Codes map one to one; the message is kept.
inline grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  NoteServerError(s);
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()),
                      std::string(s.message()));
}

// InvalidArgument naming `field` unless id > 0.
inline absl::Status PositiveId(const char* field, int64_t id) {
  if (id > 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, " must be a positive id, got ", id));
}

// Whether a sweep in state `s` has ended (no job queued or running).
inline bool Ended(v1::SweepState s) {
  return s != v1::SWEEP_ACTIVE && s != v1::SWEEP_STATE_UNSPECIFIED;
}

}  // namespace mixcal::server

// Returns the gRPC form of a non-OK status from the enclosing handler.
#define MIXCAL_GRPC_CHECK(expr)                               \
  do {                                                        \
    if (::absl::Status mixcal_st_ = (expr); !mixcal_st_.ok()) \
      return ::mixcal::server::ToGrpc(mixcal_st_);            \
  } while (0)

#endif  // MIXCAL_SERVER_GRPC_STATUS_H_
