#ifndef MIXCAL_STORAGE_SWEEP_BOOK_H_
#define MIXCAL_STORAGE_SWEEP_BOOK_H_

// Sweeps and their jobs as people see them: submitting (validation and
// quotas), reading, listing, cancelling and retrying. It owns the sweeps
// table and the jobs' rows up to the moment a worker leases one (JobQueue)
// or reports on it (ReportLog).
//
//   MIXCAL_ASSIGN_OR_RETURN(v1::Sweep sweep,
//   store->sweeps().CreateSweep(spec));
//
// Thread-safe. Errors: InvalidArgument (bad input, naming the field),
// NotFound (no such sweep or job), FailedPrecondition (a state that does
// not allow the change), ResourceExhausted (a quota; a full disk, see
// IsStorageFull), DataLoss/Internal (the file).

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "mixcal/v1/jobs.pb.h"
#include "mixcal/v1/sweep.pb.h"

namespace mixcal::storage {

class Connection;

// Who submits a sweep, and how much of the queue one submitter may hold:
// past either limit CreateSweep is ResourceExhausted and stores nothing.
struct SubmitQuota {
  std::string submitter;  // stored with the sweep
  int64_t max_unfinished_jobs =
      0;  // queued or running, all their sweeps; 0: none
  int64_t max_active_sweeps = 0;  // 0: no limit
};

struct JobFilter {
  int64_t sweep_id = 0;              // 0 = any
  std::vector<v1::JobState> states;  // empty = any
  int limit = 0;                     // 0 = the API default (spec/limits.h)
};

// Who changes a sweep or job: a token's name ("local" without tokens), and
// whether it may change anyone's (an admin). Others may change only the
// sweeps they submitted (PermissionDenied, naming the owner).
struct SweepActor {
  std::string who = "local";
  bool admin = true;
};

class SweepBook {
 public:
  explicit SweepBook(Connection& c) : c_(c) {}
  SweepBook(const SweepBook&) = delete;
  SweepBook& operator=(const SweepBook&) = delete;

  // Validates `spec` (InvalidArgument naming the field; nothing stored), then
  // stores the sweep and all its jobs in one transaction. A spec with a
  // request_id already stored returns that sweep (FailedPrecondition if the
  // stored spec differs), whatever the quota.
  absl::StatusOr<v1::Sweep> CreateSweep(const v1::SweepSpec& spec,
                                        const SubmitQuota& quota = {});
  absl::StatusOr<v1::Sweep> GetSweep(int64_t sweep_id);
  // Newest first.
  absl::StatusOr<std::vector<v1::Sweep>> ListSweeps(int limit,
                                                    bool active_only);
  using Actor = SweepActor;

  // Cancels the sweep's queued and running jobs.
  absl::StatusOr<v1::Sweep> CancelSweep(int64_t sweep_id,
                                        const Actor& actor = {});

  absl::StatusOr<v1::Job> GetJob(int64_t job_id);
  absl::StatusOr<std::vector<v1::Job>> ListJobs(const JobFilter& filter);
  // QUEUED or RUNNING -> CANCELLED; a running job's worker learns it from its
  // next heartbeat. Ended jobs: FailedPrecondition.
  absl::StatusOr<v1::Job> CancelJob(int64_t job_id, const Actor& actor = {});
  // FAILED or CANCELLED -> QUEUED with max_attempts more attempts; the attempt
  // number keeps counting, so old leases stay fenced out.
  absl::StatusOr<v1::Job> RetryJob(int64_t job_id, const Actor& actor = {});

 private:
  absl::Status CheckQuota(const SubmitQuota& quota, int64_t new_jobs);
  // In one transaction: a job in one of `from` is changed by `update_sql`
  // (?1 = now, ?2 = job id), with an event; FailedPrecondition otherwise.
  absl::StatusOr<v1::Job> TransitionJob(
      int64_t job_id, std::initializer_list<v1::JobState> from,
      const char* verb, const char* event, const char* update_sql,
      const Actor& actor);

  Connection& c_;
};

}  // namespace mixcal::storage

#endif  // MIXCAL_STORAGE_SWEEP_BOOK_H_
