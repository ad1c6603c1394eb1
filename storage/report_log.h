#ifndef MIXCAL_STORAGE_REPORT_LOG_H_
#define MIXCAL_STORAGE_REPORT_LOG_H_

// What workers report about their leased jobs: epochs (metrics of each
// split, reliability bins, kept predictions), checkpoints and finishes. It
// owns the epoch_metrics, epoch_bins and predictions rows and every change
// of a running job's state that a worker causes (finish, hand-back,
// checkpoint), each fenced on the lease (internal/fence.h).
//
// Every report, from the report stream or from a unary RPC, goes through
// one path: its own checks (PrepareReport, or inside Store*), then one
// transaction that fences it, refuses anything past an epoch that could not
// be stored, and writes it.
//
//   PreparedReport p = log.PrepareReport(&report);   // any thread
//   std::vector<ReportResult> r = log.StoreReports({&report}, {&p});
//
// Thread-safe. Errors per report: InvalidArgument (the report's own
// checks, naming the field), FailedPrecondition (a stale lease, a job that
// ended), PermissionDenied (a lease token not given to the caller),
// NotFound (no such job), Aborted (an earlier epoch of this attempt is not
// stored yet: resend from it), Unavailable (a checkpoint whose epochs are
// not all stored), ResourceExhausted (a full disk), Internal.

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "calib/config.h"
#include "mixcal/v1/jobs.pb.h"
#include "mixcal/v1/metrics.pb.h"
#include "mixcal/v1/worker.pb.h"

namespace mixcal::storage {

class Connection;

// What became of one report.
struct ReportResult {
  absl::Status status;
  // For a finish: the job's state after it. For a report refused as stale:
  // the job's state, when the attempt is still the lease's (CANCELLED: a
  // person cancelled it).
  v1::JobState state = v1::JOB_STATE_UNSPECIFIED;
};

// A report's own checks, and its kept predictions' bytes appended to the
// predictions file, done by PrepareReport before StoreReports and without
// the connection's lock: the bytes (240 KB for Fashion-MNIST's test split)
// are hashed and written by the coordinator's other threads, side by side,
// and the report writer's one thread only inserts the rows that point at
// them.
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

class ReportLog {
 public:
  explicit ReportLog(Connection& c) : c_(c) {}
  ReportLog(const ReportLog&) = delete;
  ReportLog& operator=(const ReportLog&) = delete;

  // A report's checks and its kept predictions' bytes, without the
  // connection's lock (struct PreparedReport). The bytes written are
  // dropped from `report` (the rows need only where they went), so a queued
  // report holds a few hundred bytes, not 240 KB. Bytes of a report then
  // refused (a stale lease) stay in the predictions file unreferenced, as
  // those of a replaced report do.
  PreparedReport PrepareReport(v1::WorkerReport* report);

  // A worker's reports, in order, in one transaction: epoch metrics,
  // checkpoints and finishes, each fenced and refused on its own (the
  // finish's state comes back in its result). `prepared`, when given, holds
  // PrepareReport's answer for each report (null: not prepared), and those
  // are not checked or appended again. The report writer's batches yield
  // the connection to waiting requests (internal/connection.h).
  std::vector<ReportResult> StoreReports(
      absl::Span<const v1::WorkerReport* const> reports,
      absl::Span<const PreparedReport* const> prepared = {});

  // The unary RPCs: one report each, through the same checks as
  // StoreReports, taking the connection as a request.
  //
  // One epoch's metrics (each split with its bins), replacing any rows with
  // the same (job, epoch, split).
  absl::Status ReportEpoch(const v1::Lease& lease,
                           const std::vector<v1::EpochMetrics>& metrics);
  absl::Status ReportEpoch(const v1::ReportEpochRequest& report);
  // The newest checkpoint: its epoch within the job's and every epoch up to
  // it stored (else Unavailable: resend them first).
  absl::Status RecordCheckpoint(const v1::Lease& lease, uint32_t epoch,
                                const std::string& path);
  // Ends the job as `outcome` (SUCCEEDED, FAILED or CANCELLED), or hands it
  // back (QUEUED: requeued at once with its checkpoint; the attempt is
  // counted in handbacks, not against max_attempts). Repeating it is
  // harmless; a job cancelled by a person stays CANCELLED. Returns the
  // job's state afterwards.
  absl::StatusOr<v1::JobState> FinishJob(const v1::Lease& lease,
                                         v1::JobState outcome,
                                         const std::string& error);

 private:
  enum class Turn { kRequest, kReportWriter };
  // One report, taking the connection as a request (the unary calls).
  ReportResult StoreAlone(const v1::WorkerReport& report);
  std::vector<ReportResult> Store(
      absl::Span<const v1::WorkerReport* const> reports,
      absl::Span<const PreparedReport* const> prepared, Turn turn);
  // With the connection's lock held: the batch, retried item by item with
  // savepoints when a write fails after its checks.
  std::vector<ReportResult> Write(
      absl::Span<const v1::WorkerReport* const> reports,
      absl::Span<const PreparedReport* const> prepared);
  // One transaction; an error return means it was rolled back.
  absl::Status WriteBatch(absl::Span<const v1::WorkerReport* const> reports,
                          absl::Span<const PreparedReport* const> prepared,
                          bool savepoints, std::vector<ReportResult>* results);
  absl::Status WriteEpoch(const v1::ReportEpochRequest& report,
                          const PreparedReport* prepared);
  // An epoch report against its job (with the connection's lock held): the
  // epoch within the job's and after every earlier one stored, the test
  // split's size the same at every epoch, kept predictions only of the test
  // split, at the epochs the sweep's policy keeps, of the test split's size,
  // and within the job's bound on kept bytes (counted here unless
  // PrepareReport appended them).
  absl::Status CheckAgainstJob(const v1::ReportEpochRequest& report,
                               const PreparedReport* prepared);
  // Whether PrepareReport may append a report's kept predictions before it
  // is stored: only for an attempt already checked against its job, at a
  // kept epoch, within the bound (the bytes are counted).
  bool AdmitPrepared(const v1::ReportEpochRequest& report);
  absl::Status WriteCheckpoint(const v1::ReportCheckpointRequest& checkpoint);
  absl::StatusOr<v1::JobState> WriteFinish(const v1::FinishJobRequest& finish);

  Connection& c_;
  // Per (job, attempt): the oldest epoch whose report could not be stored
  // (a full disk, an I/O error). Until that epoch is stored, the attempt's
  // later epochs, its checkpoints from that epoch on and its finish are
  // refused as retryable: a worker resends from the oldest unacknowledged
  // report, and a job must never end, or checkpoint, past a hole.
  // Guarded by the connection's lock.
  std::map<std::pair<int64_t, int64_t>, uint32_t> unstored_;

  // A job's kept predictions may be sent this many times over (resends
  // after a broken stream append them again) before they are refused.
  static constexpr int kKeptReplays = 8;
  // Per job: the attempt whose kept predictions last passed the checks,
  // what they were checked against, and the bytes appended for the job
  // since the coordinator started.
  struct KeptJob {
    v1::Lease lease;
    calib::TrainConfig policy;  // epochs, predictions, predictions_every
    uint32_t test_count = 0;
    int64_t limit = 0;
    int64_t sent = 0;
  };
  absl::Mutex kept_mu_;
  std::map<int64_t, KeptJob> kept_ ABSL_GUARDED_BY(kept_mu_);
};

}  // namespace mixcal::storage

#endif  // MIXCAL_STORAGE_REPORT_LOG_H_
