#include "worker/calls.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace mixcal::worker {

void Log(const std::string& text) {
  std::fprintf(stderr, "mixcal-worker: %s\n", text.c_str());
  std::fflush(stderr);
}

void PrepareCall(grpc::ClientContext& ctx, const std::string& token,
                 absl::Duration timeout) {
  if (timeout != absl::InfiniteDuration()) {
    ctx.set_deadline(std::chrono::system_clock::now() +
                     absl::ToChronoMilliseconds(timeout));
  }
  if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
}

bool Retryable(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNKNOWN:
      return true;
    default:
      return false;
  }
}

absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

absl::Duration Backoff::Next() {
  const absl::Duration d = delay_;
  delay_ = std::min(delay_ * 2, max_);
  return d;
}

}  // namespace mixcal::worker
