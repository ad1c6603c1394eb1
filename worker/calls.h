#ifndef MIXCAL_WORKER_CALLS_H_
#define MIXCAL_WORKER_CALLS_H_

// What the agent's calls to the coordinator share: the token and deadline
// each carries, which failures are worth retrying and how long to wait
// before the next try, and the worker's log line.

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"

namespace mixcal::worker {

// One line on stderr, "mixcal-worker: TEXT". Thread-safe.
void Log(const std::string& text);

// Adds the bearer token (when not empty) and, unless `timeout` is infinite,
// a deadline that far from now.
void PrepareCall(grpc::ClientContext& ctx, const std::string& token,
                 absl::Duration timeout);

// Whether a failed call may succeed later unchanged (the coordinator is
// away, busy, or failed inside).
bool Retryable(const grpc::Status& status);

// gRPC's status as absl's: the codes map one to one.
absl::Status FromGrpc(const grpc::Status& status);

// Waits between retries: `first`, doubling up to `max` (by default 100 ms
// up to 5 s). Not thread-safe.
class Backoff {
 public:
  Backoff() = default;
  Backoff(absl::Duration first, absl::Duration max)
      : first_(first), max_(max), delay_(first) {}
  absl::Duration Next();
  void Reset() { delay_ = first_; }

 private:
  absl::Duration first_ = absl::Milliseconds(100);
  absl::Duration max_ = absl::Seconds(5);
  absl::Duration delay_ = first_;
};

}  // namespace mixcal::worker

#endif  // MIXCAL_WORKER_CALLS_H_
