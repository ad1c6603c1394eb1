#ifndef MIXCAL_STORAGE_JOB_QUEUE_H_
#define MIXCAL_STORAGE_JOB_QUEUE_H_

// Workers and the leases they hold: registering, leasing the next job,
// heartbeats, expiring silent workers' leases. A lease is (job, attempt,
// token); internal/fence.h is the one check of a lease that the heartbeat
// here and every report (ReportLog) go through.
//
// Thread-safe. Errors: InvalidArgument (naming the field), NotFound (no
// such worker or job), FailedPrecondition (a stale lease), PermissionDenied
// (a lease token not given to the caller), ResourceExhausted (a full disk),
// DataLoss/Internal (the file).

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "mixcal/v1/jobs.pb.h"
#include "mixcal/v1/worker.pb.h"

namespace mixcal::storage {

class Connection;

// What a worker is leased.
struct Assignment {
  v1::Job job;  // state RUNNING, its attempt, config and checkpoint
  v1::Lease lease;
};

// Lease bookkeeping answered to a heartbeat.
struct HeartbeatResult {
  std::vector<v1::Lease> extended;
  std::vector<v1::Lease> cancelled;  // the job was cancelled by a person
  std::vector<v1::Lease> lost;       // the lease is stale or the job ended
};

struct ExpireResult {
  std::vector<int64_t> requeued;  // job ids back in the queue
  std::vector<int64_t> failed;    // job ids that used up their attempts
};

class JobQueue {
 public:
  explicit JobQueue(Connection& c) : c_(c) {}
  JobQueue(const JobQueue&) = delete;
  JobQueue& operator=(const JobQueue&) = delete;

  // `key`, when given, receives the worker's key (LeaveRotation's proof).
  absl::StatusOr<int64_t> RegisterWorker(const v1::WorkerInfo& info,
                                         std::string* key = nullptr);
  absl::StatusOr<std::vector<v1::WorkerInfo>> ListWorkers();
  // Marks the worker as gone, OUT_OF_ROTATION when `failing` (its own
  // environment failed) else STOPPED, with `reason` (valid UTF-8, at most
  // 4096 bytes). Only with the worker's key (RegisterWorker): else
  // PermissionDenied. NotFound for an unknown worker.
  absl::Status LeaveRotation(int64_t worker_id, bool failing,
                             absl::string_view reason, absl::string_view key);

  // Leases the next job `worker_id` can run, or nullopt when none is queued.
  // Order: device class (cpu, cuda: the worker's; any: all), then priority,
  // then fair turns between sweeps of equal priority (the one served least
  // recently first), then age within the sweep. attempt + 1, lease until
  // now + lease_us.
  absl::StatusOr<std::optional<Assignment>> AcquireJob(int64_t worker_id,
                                                       int64_t lease_us);

  // Records that an idle worker asked for work (a long poll found none):
  // heard from now, so it is not taken for gone while it waits. Idle workers
  // send no heartbeats.
  absl::Status NoteIdle(int64_t worker_id);

  // Leases one heartbeat may carry.
  static constexpr size_t kMaxLeasesPerHeartbeat = 256;

  // Extends each held lease still current to now + lease_us and records the
  // worker's heartbeat. InvalidArgument past kMaxLeasesPerHeartbeat leases.
  absl::StatusOr<HeartbeatResult> Heartbeat(
      int64_t worker_id, const std::vector<v1::Lease>& leases,
      int64_t lease_us);
  // When (clock micros) a heartbeat was last refused for lack of space, or
  // 0: its worker is alive although its lease could not be extended, so
  // the lease reaper gives running leases a fresh term before it judges
  // them. Thread-safe.
  int64_t last_heartbeat_refused_full_us() const {
    return heartbeat_full_us_.load(std::memory_order_relaxed);
  }

  // Gives every RUNNING job's lease at least until `until_us`. The
  // coordinator calls it at start-up: while it was down its workers could
  // not heartbeat, and they need time to reconnect before their leases are
  // judged. Returns how many leases it extended.
  absl::StatusOr<int64_t> ExtendRunningLeases(int64_t until_us);

  // Running jobs whose lease expired: back to QUEUED, or FAILED when their
  // attempts are used up. Their workers are marked lost.
  absl::StatusOr<ExpireResult> ExpireLeases();

 private:
  absl::StatusOr<HeartbeatResult> HeartbeatLocked(
      int64_t worker_id, const std::vector<v1::Lease>& leases,
      int64_t lease_us);

  Connection& c_;
  std::atomic<int64_t> heartbeat_full_us_{0};
};

}  // namespace mixcal::storage

#endif  // MIXCAL_STORAGE_JOB_QUEUE_H_
