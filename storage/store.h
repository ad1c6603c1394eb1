#ifndef MIXCAL_STORAGE_STORE_H_
#define MIXCAL_STORAGE_STORE_H_

// The coordinator's state in one SQLite file (DESIGN.md section 4): sweeps,
// jobs and their leases, workers, per-epoch metrics with reliability bins,
// and an event log. Protobuf messages are the record types; no gRPC here.
//
//   MIXCAL_ASSIGN_OR_RETURN(auto store, Store::Open({.path = "mixcal.db"}));
//   MIXCAL_ASSIGN_OR_RETURN(v1::Sweep sweep, store->CreateSweep(spec));
//
// Thread-safe: one connection, calls serialised by a mutex. Several Store
// objects (processes) may open the same file; SQLite's WAL lets readers run
// while one writes, and every multi-row write is one transaction, so a
// reader never sees half of one.
//
// Errors: InvalidArgument (bad input, naming the field), NotFound (no such
// sweep/job/worker), FailedPrecondition (a stale lease; a state that does not
// allow the change), DataLoss/Internal (the file), Unavailable (busy beyond
// busy_timeout).

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "mixcal/v1/jobs.pb.h"
#include "mixcal/v1/metrics.pb.h"
#include "mixcal/v1/sweep.pb.h"
#include "mixcal/v1/worker.pb.h"
#include "base/clock.h"

namespace mixcal::storage {

class BlobFile;
class Checkpointer;
class Database;
class Statement;

// Whether `s` is the store refusing a write because its file's filesystem
// is full (ResourceExhausted, naming the file), as against other
// ResourceExhausted answers such as a submitter's quota.
bool IsStorageFull(const absl::Status& s);

struct StoreOptions {
  std::string path;        // a file, or ":memory:"
  Clock* clock = nullptr;  // default SystemClock()
  int busy_timeout_ms = 10000;
  // Migrate only up to this schema version (tests of migrations); 0 = latest.
  int migrate_to = 0;
  // Run SQLite's quick_check when opening, refusing a damaged file (seconds
  // on a file of gigabytes: a flag of the coordinator can skip it).
  bool check_integrity = true;
};

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

// What became of one report of StoreReports.
struct ReportResult {
  absl::Status status;
  // For a finish: the job's state after it. For a report refused as stale:
  // the job's state, when the attempt is still the lease's (CANCELLED: a
  // person cancelled it).
  v1::JobState state = v1::JOB_STATE_UNSPECIFIED;
};

// A report's own checks, and its kept predictions' bytes appended to the
// predictions file, done by PrepareReport before StoreReports and without
// the store's lock: the bytes (240 KB for Fashion-MNIST's test split) are
// hashed and written by the coordinator's other threads, side by side, and
// the report writer's one thread only inserts the rows that point at them.
struct PreparedReport {
  absl::Status checked;   // the report's refusal (InvalidArgument), if any
  absl::Status appended;  // writing its predictions' bytes (a full disk)
  // Where each of epoch().predictions() went, when they went to the file.
  struct Bytes {
    int64_t offset = 0, bytes = 0;
    uint64_t hash = 0;
  };
  std::vector<Bytes> predictions;
  bool in_file() const { return !predictions.empty(); }
};

// Who submits a sweep, and how much of the queue one submitter may hold:
// past either limit CreateSweep is ResourceExhausted and stores nothing.
struct SubmitQuota {
  std::string submitter;           // stored with the sweep
  int64_t max_unfinished_jobs = 0;  // queued or running, all their sweeps; 0: none
  int64_t max_active_sweeps = 0;    // 0: no limit
};

// Worker tasks submitted to a batch scheduler (server/launcher.h).
struct Launch {
  std::string scheduler_id;  // e.g. Slurm's array job id
  std::string device_class;  // cpu | cuda
  int tasks = 0;
  int64_t submitted_at_us = 0;
};

// What the launcher weighs: jobs a worker of a device class could take, and
// workers of that class that could take them now.
struct LaunchDemand {
  int64_t queued_jobs = 0;   // QUEUED, device the class or any, active sweeps
  int64_t idle_workers = 0;  // ACTIVE, heard from recently, no running job
};

struct JobFilter {
  int64_t sweep_id = 0;              // 0 = any
  std::vector<v1::JobState> states;  // empty = any
  int limit = 0;  // 0 = the API default (spec/limits.h)
};

class Store {
 public:
  // Opens or creates the file (created readable by its owner only).
  // Refused, with the file named: a file that is not SQLite or is damaged
  // (DataLoss), another program's SQLite file (FailedPrecondition: it is
  // never extended with mixcal's tables), a file of a newer mixcal.
  static absl::StatusOr<std::unique_ptr<Store>> Open(
      const StoreOptions& options);
  ~Store();

  // While one lives, the report writer waits (up to about 10 ms a batch)
  // for other requests to go first: a caller making several requests in a
  // row (the dispatcher leasing jobs to waiting workers) keeps its turn.
  class PriorityScope {
   public:
    explicit PriorityScope(Store* s) : s_(s) {
      s_->requests_waiting_.fetch_add(1, std::memory_order_relaxed);
    }
    ~PriorityScope() {
      s_->requests_waiting_.fetch_sub(1, std::memory_order_relaxed);
    }
    PriorityScope(const PriorityScope&) = delete;
    PriorityScope& operator=(const PriorityScope&) = delete;

   private:
    Store* const s_;
  };

  // The schema version of the open file.
  static int LatestSchemaVersion();
  absl::StatusOr<int> SchemaVersion();

  // --- sweeps and jobs ---

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
  // Cancels the sweep's queued and running jobs.
  absl::StatusOr<v1::Sweep> CancelSweep(int64_t sweep_id);

  absl::StatusOr<v1::Job> GetJob(int64_t job_id);
  absl::StatusOr<std::vector<v1::Job>> ListJobs(const JobFilter& filter);
  // QUEUED or RUNNING -> CANCELLED; a running job's worker learns it from its
  // next heartbeat. Ended jobs: FailedPrecondition.
  absl::StatusOr<v1::Job> CancelJob(int64_t job_id);
  // FAILED or CANCELLED -> QUEUED with max_attempts more attempts; the attempt
  // number keeps counting, so old leases stay fenced out.
  absl::StatusOr<v1::Job> RetryJob(int64_t job_id);

  // --- workers and leases ---

  absl::StatusOr<int64_t> RegisterWorker(const v1::WorkerInfo& info);
  absl::StatusOr<std::vector<v1::WorkerInfo>> ListWorkers();
  // Marks the worker as gone, OUT_OF_ROTATION when `failing` (its own
  // environment failed) else STOPPED, with `reason` (valid UTF-8, at most
  // 4096 bytes). NotFound for an unknown worker.
  absl::Status LeaveRotation(int64_t worker_id, bool failing,
                             absl::string_view reason);

  // --- launches (workers started through a batch scheduler) ---

  // Idle workers are those heard from after `heard_after_us`.
  absl::StatusOr<LaunchDemand> GetLaunchDemand(const std::string& device_class,
                                               int64_t heard_after_us);
  absl::Status RecordLaunch(const std::string& engine, const Launch& launch);
  // Launches of `engine` not yet ended, oldest first.
  absl::StatusOr<std::vector<Launch>> ActiveLaunches(const std::string& engine);
  absl::Status EndLaunch(const std::string& engine,
                         const std::string& scheduler_id);

  // Leases the next job `worker_id` can run, or nullopt when none is queued.
  // Order: device class (cpu, cuda: the worker's; any: all), then priority,
  // then fair turns between sweeps of equal priority (the one served least
  // recently first), then age within the sweep. attempt + 1, lease until
  // now + lease_us.
  absl::StatusOr<std::optional<Assignment>> AcquireJob(int64_t worker_id,
                                                       int64_t lease_us);

  // Leases one heartbeat may carry.
  static constexpr size_t kMaxLeasesPerHeartbeat = 256;

  // Extends each held lease still current to now + lease_us and records the
  // worker's heartbeat. InvalidArgument past kMaxLeasesPerHeartbeat leases.
  absl::StatusOr<HeartbeatResult> Heartbeat(
      int64_t worker_id, const std::vector<v1::Lease>& leases,
      int64_t lease_us);

  // Gives every RUNNING job's lease at least until `until_us`. The
  // coordinator calls it at start-up: while it was down its workers could
  // not heartbeat, and they need time to reconnect before their leases are
  // judged. Returns how many leases it extended.
  absl::StatusOr<int64_t> ExtendRunningLeases(int64_t until_us);

  // Running jobs whose lease expired: back to QUEUED, or FAILED when their
  // attempts are used up. Their workers are marked lost.
  absl::StatusOr<ExpireResult> ExpireLeases();

  // Stores one epoch's metrics (each split with its bins), replacing any rows
  // with the same (job, epoch, split). Fenced: FailedPrecondition, and nothing
  // stored, unless the job is RUNNING on exactly lease.attempt.
  absl::Status ReportEpoch(const v1::Lease& lease,
                           const std::vector<v1::EpochMetrics>& metrics);
  absl::Status ReportEpoch(const v1::ReportEpochRequest& report);
  // A worker's reports from StreamReports, in order, in one transaction:
  // epoch metrics (as ReportEpoch), checkpoints (as RecordCheckpoint) and
  // finishes (as FinishJob, whose state comes back in the result). Each is
  // fenced and refused on its own.
  // `prepared`, when given, holds PrepareReport's answer for each report
  // (null: not prepared), and those are not checked or appended again.
  std::vector<ReportResult> StoreReports(
      absl::Span<const v1::WorkerReport* const> reports,
      absl::Span<const PreparedReport* const> prepared = {});
  // A report's checks and its kept predictions' bytes, without the store's
  // lock (struct PreparedReport). The bytes written are dropped from
  // `report` (the rows need only where they went), so a queued report
  // holds a few hundred bytes, not 240 KB. Bytes of a report then refused
  // (a stale lease) stay in the predictions file unreferenced, as those of
  // a replaced report do.
  PreparedReport PrepareReport(v1::WorkerReport* report);
  // Records the newest checkpoint (fenced like ReportEpoch).
  absl::Status RecordCheckpoint(const v1::Lease& lease, uint32_t epoch,
                                const std::string& path);
  // Ends the job as `outcome` (SUCCEEDED, FAILED or CANCELLED), or hands it
  // back (QUEUED: requeued at once with its checkpoint; the attempt is
  // counted in handbacks, not against max_attempts). Fenced; repeating it is
  // harmless. A job cancelled by a person stays CANCELLED.
  // Returns the job's state afterwards.
  absl::StatusOr<v1::JobState> FinishJob(const v1::Lease& lease,
                                         v1::JobState outcome,
                                         const std::string& error);

  // --- queries ---

  absl::StatusOr<std::vector<v1::EpochMetrics>> QueryMetrics(
      const v1::MetricsFilter& filter, std::string* next_page_token);
  // Mean, std and count over seeds per (method, value, split). With `vs`
  // ("METHOD" or "METHOD:VALUE", see SummarizeSweepRequest.vs) each metric
  // also gets its difference to that configuration, paired by seed, with a
  // 95% Student-t interval; an unknown or ambiguous `vs` is
  // InvalidArgument naming the methods and values the sweep has.
  // With `ensemble`, also a row per (method, value) with ensemble set: the
  // metrics of the average of its seeds' kept test probabilities at the
  // epochs `at` chooses (seeds without kept predictions there are left out;
  // seeds whose test labels differ make no ensemble).
  absl::StatusOr<std::vector<v1::SummaryRow>> SummarizeSweep(
      int64_t sweep_id, const v1::SummaryPoint& at, const std::string& split,
      const std::string& vs = "", bool ensemble = false);
  // A job's kept predictions of `split` (empty: test) at `epoch` (0: the
  // newest epoch that kept them). NotFound says which epochs have them.
  absl::StatusOr<v1::Predictions> GetPredictions(int64_t job_id,
                                                 uint32_t epoch,
                                                 const std::string& split);
  // epoch 0 = the job's newest; the bins with ECE, MCE and OE re-derived.
  absl::StatusOr<v1::EpochMetrics> GetReliability(int64_t job_id,
                                                  uint32_t epoch,
                                                  const std::string& split);
  absl::StatusOr<std::vector<v1::Event>> ListEvents(int64_t sweep_id,
                                                    int64_t job_id,
                                                    int64_t after_id,
                                                    int limit);

  // Tests: the kept predictions' bytes go to `path` from now on ("/dev/full"
  // makes every append fail as a full disk does).
  absl::Status SetPredictionsFileForTesting(const std::string& path);

 private:
  Store(std::unique_ptr<Database> db, Clock* clock);
  absl::Status Migrate(int target) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<v1::Sweep> GetSweepLocked(int64_t sweep_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckQuota(const SubmitQuota& quota, int64_t new_jobs)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<v1::Job> GetJobLocked(int64_t job_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // OK when the job is RUNNING on exactly lease.attempt; `state`, when given,
  // gets the job's state if the attempt is the lease's.
  absl::Status CheckLease(const v1::Lease& lease, v1::JobState* state = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // In one transaction: a job in one of `from` is changed by `update_sql`
  // (?1 = now, ?2 = job id), with an event; FailedPrecondition otherwise.
  absl::StatusOr<v1::Job> TransitionJob(
      int64_t job_id, std::initializer_list<v1::JobState> from,
      const char* verb, const char* event, const char* update_sql);
  // One of a batch of reports: exactly one of the first three set.
  struct ReportItem {
    const v1::ReportEpochRequest* epoch;
    const v1::ReportCheckpointRequest* checkpoint;
    const v1::FinishJobRequest* finish;
    const PreparedReport* prepared = nullptr;
  };
  // The predictions file, or null (a ":memory:" store keeps the bytes in
  // the rows).
  std::shared_ptr<BlobFile> Blobs() const;
  std::vector<ReportResult> StoreItems(absl::Span<const ReportItem> items);
  std::vector<ReportResult> WriteItems(absl::Span<const ReportItem> items)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // One transaction; an error return means it was rolled back.
  absl::Status WriteBatch(absl::Span<const ReportItem> items, bool savepoints,
                          std::vector<ReportResult>* results)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status SetLastEpoch(int64_t job, uint32_t epoch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckpointLocked(const v1::Lease& lease, uint32_t epoch,
                                const std::string& path)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<v1::JobState> FinishLocked(const v1::Lease& lease,
                                            v1::JobState outcome,
                                            const std::string& error)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // SummarizeSweep's ensemble rows, from `chosen` (SQL of (job_id, epoch)
  // with ?1 the sweep).
  absl::Status AppendEnsembles(
      const std::string& chosen, int64_t sweep_id, int bins,
      const std::optional<std::pair<std::string, double>>& ref,
      std::vector<v1::SummaryRow>* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A report's rows, its lease already checked.
  absl::Status WriteReportRows(const v1::ReportEpochRequest& report,
                               const PreparedReport* prepared)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ReadBins(v1::EpochMetrics* m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A predictions row's probabilities and labels, from columns `first`..
  // (probabilities, labels, file_offset, file_bytes, file_hash, count,
  // classes): in the row, or in the predictions file it points into.
  absl::Status PredictionBytes(const Statement& s, int first, int64_t job_id,
                               std::string* probabilities, std::string* labels)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status AddEvent(int64_t sweep_id, int64_t job_id,
                        const std::string& kind, const std::string& message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status UpdateSweepState(int64_t sweep_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  class RequestLock;
  class ReportLock;
  absl::Mutex mu_;
  std::atomic<int> requests_waiting_{0};  // for mu_ (see RequestLock)
  std::unique_ptr<Database> db_ ABSL_GUARDED_BY(mu_);
  Clock* const clock_;
  std::unique_ptr<Checkpointer> checkpointer_;  // null for ":memory:"
  // Per (job, attempt): the oldest epoch whose report could not be stored
  // (a full disk, an I/O error). Until that epoch is stored, the attempt's
  // later epochs, its checkpoints from that epoch on and its finish are
  // refused as retryable: a worker resends from the oldest unacknowledged
  // report, and a job must never end, or checkpoint, past a hole.
  std::map<std::pair<int64_t, int64_t>, uint32_t> unstored_
      ABSL_GUARDED_BY(mu_);
  // "<path>.predictions"; null for ":memory:" (the bytes stay in the rows).
  mutable absl::Mutex blobs_mu_;
  std::shared_ptr<BlobFile> blobs_ ABSL_GUARDED_BY(blobs_mu_);
};

}  // namespace mixcal::storage

#endif  // MIXCAL_STORAGE_STORE_H_
