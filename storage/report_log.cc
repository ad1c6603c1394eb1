#include "storage/report_log.h"

#include <algorithm>
#include <map>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "base/utf8.h"
#include "calib/config.h"
#include "calib/metric_table.h"
#include "spec/metric_values.h"
#include "spec/spec.h"
#include "storage/internal/bins_codec.h"
#include "storage/internal/blob_file.h"
#include "storage/internal/connection.h"
#include "storage/internal/fence.h"
#include "storage/internal/job_rules.h"
#include "storage/internal/job_states.h"
#include "storage/internal/records.h"
#include "storage/internal/report_checks.h"
#include "storage/internal/rows.h"
#include "storage/internal/sqlite.h"

namespace mixcal::storage {
namespace {

const v1::Lease& LeaseOf(const v1::WorkerReport& r) {
  if (r.has_epoch()) return r.epoch().lease();
  if (r.has_checkpoint()) return r.checkpoint().lease();
  return r.finish().lease();
}

// The epoch a report is about; 0 for a finish.
uint32_t EpochOf(const v1::WorkerReport& r) {
  if (r.has_epoch()) return r.epoch().metrics(0).epoch();
  if (r.has_checkpoint()) return r.checkpoint().epoch();
  return 0;
}

// What is stored after the probabilities: the labels, then each label's
// log-probability when the worker sent them (MetricReader splits them by
// size).
std::string LabelBytes(const v1::Predictions& p) {
  return p.label_log_probs().empty() ? p.labels()
                                     : p.labels() + p.label_log_probs();
}

// Refusals that come before an item writes anything.
bool Refusal(const absl::Status& s) {
  return absl::IsFailedPrecondition(s) || absl::IsNotFound(s) ||
         absl::IsInvalidArgument(s) || absl::IsPermissionDenied(s);
}


absl::Status SetLastEpoch(Connection& c, int64_t job, uint32_t epoch) {
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement last,
      c.db()->Cached(
          "UPDATE jobs SET last_epoch = MAX(last_epoch, ?) WHERE id = ?"));
  return last->Bind(1, epoch).Bind(2, job).Run();
}

}  // namespace

PreparedReport ReportLog::PrepareReport(v1::WorkerReport* report) {
  PreparedReport out;
  out.checked = CheckReport(*report);
  if (!out.checked.ok() || !report->has_epoch() ||
      report->epoch().predictions_size() == 0) {
    return out;
  }
  BlobFile* const blobs = c_.blobs();
  if (blobs == nullptr) return out;  // the bytes go in the rows
  // Only for an attempt whose kept predictions passed the job's checks
  // before (and within its bound): anything else is checked first, under
  // the lock, and appended there, so that a forged or stray report cannot
  // grow the file.
  if (!AdmitPrepared(report->epoch())) return out;
  for (const v1::Predictions& p : report->epoch().predictions()) {
    absl::StatusOr<BlobRef> ref =
        blobs->Append(p.probabilities(), LabelBytes(p));
    if (!ref.ok()) {
      out.appended = ref.status();
      out.predictions.clear();
      return out;
    }
    out.predictions.push_back({ref->offset, ref->bytes, ref->hash});
  }
  for (v1::Predictions& p : *report->mutable_epoch()->mutable_predictions()) {
    std::string().swap(*p.mutable_probabilities());
    std::string().swap(*p.mutable_labels());
    std::string().swap(*p.mutable_label_log_probs());
  }
  return out;
}

std::vector<ReportResult> ReportLog::StoreReports(
    absl::Span<const v1::WorkerReport* const> reports,
    absl::Span<const PreparedReport* const> prepared) {
  return Store(reports, prepared, Turn::kReportWriter);
}

absl::Status ReportLog::ReportEpoch(
    const v1::Lease& lease, const std::vector<v1::EpochMetrics>& metrics) {
  v1::WorkerReport report;
  *report.mutable_epoch()->mutable_lease() = lease;
  for (const v1::EpochMetrics& m : metrics)
    *report.mutable_epoch()->add_metrics() = m;
  return StoreAlone(report).status;
}

absl::Status ReportLog::ReportEpoch(const v1::ReportEpochRequest& epoch) {
  v1::WorkerReport report;
  *report.mutable_epoch() = epoch;
  return StoreAlone(report).status;
}

absl::Status ReportLog::RecordCheckpoint(const v1::Lease& lease, uint32_t epoch,
                                         const std::string& path) {
  v1::WorkerReport report;
  v1::ReportCheckpointRequest* c = report.mutable_checkpoint();
  *c->mutable_lease() = lease;
  c->set_epoch(epoch);
  c->set_path(path);
  return StoreAlone(report).status;
}

absl::StatusOr<v1::JobState> ReportLog::FinishJob(const v1::Lease& lease,
                                                  v1::JobState outcome,
                                                  const std::string& error) {
  v1::WorkerReport report;
  v1::FinishJobRequest* f = report.mutable_finish();
  *f->mutable_lease() = lease;
  f->set_outcome(outcome);
  f->set_error(error);
  ReportResult r = StoreAlone(report);
  if (!r.status.ok()) return r.status;
  return r.state;
}

ReportResult ReportLog::StoreAlone(const v1::WorkerReport& report) {
  const v1::WorkerReport* one = &report;
  return Store({&one, 1}, {}, Turn::kRequest)[0];
}

std::vector<ReportResult> ReportLog::Store(
    absl::Span<const v1::WorkerReport* const> reports,
    absl::Span<const PreparedReport* const> prepared, Turn turn) {
  std::vector<ReportResult> results(reports.size());
  std::vector<const v1::WorkerReport*> valid;
  std::vector<const PreparedReport*> valid_prepared;
  std::vector<size_t> where;
  for (size_t i = 0; i < reports.size(); ++i) {
    const PreparedReport* p = i < prepared.size() ? prepared[i] : nullptr;
    const absl::Status s = p != nullptr ? p->checked : CheckReport(*reports[i]);
    results[i].status = s;
    if (s.ok()) {
      valid.push_back(reports[i]);
      valid_prepared.push_back(p);
      where.push_back(i);
    }
  }
  if (valid.empty()) return results;
  std::vector<ReportResult> written;
  if (turn == Turn::kRequest) {
    RequestLock lock(c_);
    written = Write(valid, valid_prepared);
  } else {
    ReportLock lock(c_);
    written = Write(valid, valid_prepared);
  }
  for (size_t k = 0; k < where.size(); ++k)
    results[where[k]] = std::move(written[k]);
  return results;
}

std::vector<ReportResult> ReportLog::Write(
    absl::Span<const v1::WorkerReport* const> reports,
    absl::Span<const PreparedReport* const> prepared) {
  std::vector<ReportResult> results(reports.size());
  // Fast: no savepoint per item. A refusal (stale lease, a finished job) is
  // found before anything of its item is written, so it needs none; a write
  // failing after its checks (I/O, a full disk) rolls back the batch, which
  // is then written again with a savepoint per item, so that only that item
  // fails.
  absl::Status s =
      WriteBatch(reports, prepared, /*savepoints=*/false, &results);
  if (s.ok()) return results;
  s = WriteBatch(reports, prepared, /*savepoints=*/true, &results);
  if (!s.ok()) {
    for (ReportResult& r : results)
      if (r.status.ok()) r.status = s;
  }
  return results;
}

absl::Status ReportLog::WriteBatch(
    absl::Span<const v1::WorkerReport* const> reports,
    absl::Span<const PreparedReport* const> prepared, bool savepoints,
    std::vector<ReportResult>* results) {
  auto exec_cached = [&](const char* sql) -> absl::Status {
    MIXCAL_ASSIGN_OR_RETURN(CachedStatement st, c_.db()->Cached(sql));
    return st->Run();
  };
  Transaction txn(c_.db());
  MIXCAL_RETURN_IF_ERROR(txn.Begin());
  // Only a finish changes a job's state or attempt here, so a lease is
  // checked once per batch until its job finishes.
  // A refusal carries the job's state (on this attempt): a worker tells a
  // job a person cancelled from one it lost.
  std::map<std::pair<int64_t, int64_t>, ReportResult> leases;
  auto check = [&](const v1::Lease& l) -> const ReportResult& {
    const auto key =
        std::make_pair(l.job_id(), static_cast<int64_t>(l.attempt()));
    auto it = leases.find(key);
    if (it == leases.end()) {
      ReportResult r;
      r.status = CheckLease(c_, l, &r.state);
      if (r.status.ok()) r.state = v1::JOB_STATE_UNSPECIFIED;
      it = leases.emplace(key, std::move(r)).first;
    }
    return it->second;
  };
  std::map<int64_t, uint32_t> last_epoch;  // per job, of the epochs stored
  // unstored_ as this batch changes it; kept only if it commits.
  std::map<std::pair<int64_t, int64_t>, uint32_t> unstored = unstored_;
  for (size_t i = 0; i < reports.size(); ++i) {
    const v1::WorkerReport& report = *reports[i];
    ReportResult& result = (*results)[i];
    result = ReportResult();
    const v1::Lease& lease = LeaseOf(report);
    const auto attempt_key =
        std::make_pair(lease.job_id(), static_cast<int64_t>(lease.attempt()));
    const uint32_t epoch = EpochOf(report);
    if (auto hole = unstored.find(attempt_key); hole != unstored.end()) {
      const bool after = report.has_finish() ||
                         (report.has_checkpoint() && epoch >= hole->second) ||
                         (report.has_epoch() && epoch > hole->second);
      if (after) {
        result.status = absl::AbortedError(
            absl::StrCat("job ", lease.job_id(), ": epoch ", hole->second,
                         " is not stored yet; resend from it"));
        continue;
      }
    }
    if (!report.has_finish()) {
      const ReportResult& lease_check = check(lease);
      if (!lease_check.status.ok()) {
        result = lease_check;
        continue;
      }
    }
    if (savepoints) MIXCAL_RETURN_IF_ERROR(exec_cached("SAVEPOINT report"));
    absl::Status s;
    if (report.has_epoch()) {
      s = WriteEpoch(report.epoch(),
                     i < prepared.size() ? prepared[i] : nullptr);
    } else if (report.has_checkpoint()) {
      s = WriteCheckpoint(report.checkpoint());
    } else {
      const int64_t job = lease.job_id();
      // The job's newest epoch goes in before its state changes.
      if (auto e = last_epoch.find(job); e != last_epoch.end()) {
        s = SetLastEpoch(c_, job, e->second);
        last_epoch.erase(e);
      }
      if (s.ok()) {
        absl::StatusOr<v1::JobState> state = WriteFinish(report.finish());
        s = state.status();
        if (state.ok()) result.state = *state;
      }
      leases.erase(leases.lower_bound({job, 0}),
                   leases.lower_bound({job + 1, 0}));
      if (!savepoints && !s.ok() && Refusal(s)) {
        result.status = s;  // wrote nothing
        continue;
      }
    }
    if (!s.ok()) {
      if (!savepoints) return s;
      // Undo this item alone; if even that fails, the batch is rolled
      // back whole (the caller fails every item still unanswered).
      MIXCAL_RETURN_IF_ERROR(exec_cached("ROLLBACK TO report"));
      if (report.has_epoch() && !Refusal(s)) {
        auto [hole, fresh] = unstored.emplace(attempt_key, epoch);
        if (!fresh) hole->second = std::min(hole->second, epoch);
      }
    } else if (report.has_epoch()) {
      if (auto hole = unstored.find(attempt_key);
          hole != unstored.end() && hole->second == epoch) {
        unstored.erase(hole);
      }
    }
    if (savepoints) MIXCAL_RETURN_IF_ERROR(exec_cached("RELEASE report"));
    result.status = s;
    if (s.ok() && report.has_epoch()) {
      uint32_t& e = last_epoch[lease.job_id()];
      e = std::max(e, epoch);
    }
  }
  for (const auto& [job, epoch] : last_epoch)
    MIXCAL_RETURN_IF_ERROR(SetLastEpoch(c_, job, epoch));
  MIXCAL_RETURN_IF_ERROR(txn.Commit());
  unstored_ = std::move(unstored);
  return absl::OkStatus();
}

absl::Status ReportLog::WriteEpoch(const v1::ReportEpochRequest& report,
                                   const PreparedReport* prepared) {
  const int64_t job = report.lease().job_id();
  MIXCAL_RETURN_IF_ERROR(CheckAgainstJob(report, prepared));
  if (!report.data().empty()) {
    MIXCAL_ASSIGN_OR_RETURN(
        CachedStatement data,
        c_.db()->Cached("UPDATE jobs SET data = ? WHERE id = ? AND data != ?"));
    const std::string text = ToValidUtf8(report.data(), 16384);
    MIXCAL_RETURN_IF_ERROR(data->Bind(1, text).Bind(2, job).Bind(3, text).Run());
  }
  // One column per metric of calib's table, bound from the report row by
  // the table's names (spec/metric_values.h).
  static const auto* insert_sql = new std::string(absl::StrCat(
      "INSERT OR REPLACE INTO epoch_metrics (job_id, epoch, split, count, "
      "wall_seconds, attempt, estimators, calibration, ",
      MetricColumnNames(), ") VALUES (?, ?, ?, ?, ?, ?, ?, ?",
      absl::StrJoin(std::vector<std::string>(calib::Metrics().size(), ", ?"),
                    ""),
      ")"));
  MIXCAL_ASSIGN_OR_RETURN(CachedStatement put, c_.db()->Cached(*insert_sql));
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement put_bins,
      c_.db()->Cached(
          "INSERT OR REPLACE INTO epoch_bins (job_id, epoch, split, "
          "bins) VALUES (?, ?, ?, ?)"));
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement del_bins,
      c_.db()->Cached(
          "DELETE FROM epoch_bins WHERE job_id = ? AND epoch = ? AND "
          "split = ?"));
  if (report.predictions_size() > 0) {
    MIXCAL_ASSIGN_OR_RETURN(
        CachedStatement put_pred,
        c_.db()->Cached(
            "INSERT OR REPLACE INTO predictions (job_id, epoch, "
            "split, count, classes, probabilities, labels, attempt, "
            "file_offset, file_bytes, file_hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    // Appended by PrepareReport already, or here.
    if (prepared != nullptr) {
      MIXCAL_RETURN_IF_ERROR(prepared->appended);
      if (prepared->in_file() &&
          static_cast<int>(prepared->predictions.size()) !=
              report.predictions_size()) {
        return absl::InternalError(
            "prepared predictions do not match the report");
      }
    }
    BlobFile* const blobs =
        prepared != nullptr && prepared->in_file() ? nullptr : c_.blobs();
    for (int k = 0; k < report.predictions_size(); ++k) {
      const v1::Predictions& p = report.predictions(k);
      put_pred->Reset();
      put_pred->Bind(1, job)
          .Bind(2, p.epoch())
          .Bind(3, p.split())
          .Bind(4, p.count())
          .Bind(5, p.classes())
          .Bind(8, report.lease().attempt());
      std::optional<BlobRef> ref;
      if (prepared != nullptr && prepared->in_file()) {
        const PreparedReport::Bytes& b = prepared->predictions[k];
        ref = BlobRef{b.offset, b.bytes, b.hash};
      } else if (blobs != nullptr) {
        // The bytes first, then the row that points at them (blob_file.h).
        MIXCAL_ASSIGN_OR_RETURN(ref,
                                blobs->Append(p.probabilities(), LabelBytes(p)));
      }
      if (ref) {
        put_pred->BindBlob(6, "")
            .BindBlob(7, "")
            .Bind(9, ref->offset)
            .Bind(10, ref->bytes)
            .Bind(11, static_cast<int64_t>(ref->hash));
      } else {
        put_pred->BindBlob(6, p.probabilities())
            .BindBlob(7, LabelBytes(p))
            .BindNull(9)
            .BindNull(10)
            .BindNull(11);
      }
      MIXCAL_RETURN_IF_ERROR(put_pred->Run());
    }
  }
  for (const v1::EpochMetrics& m : report.metrics()) {
    put->Reset();
    put->Bind(1, job)
        .Bind(2, m.epoch())
        .Bind(3, m.split())
        .Bind(4, m.count())
        .Bind(5, m.wall_seconds())
        .Bind(6, report.lease().attempt())
        .Bind(7, m.estimators())
        .Bind(8, m.calibration());
    BindMetricValues(*put, 9, m);
    MIXCAL_RETURN_IF_ERROR(put->Run());
    if (m.bins_size() > 0) {
      put_bins->Reset();
      MIXCAL_RETURN_IF_ERROR(put_bins->Bind(1, job)
                                 .Bind(2, m.epoch())
                                 .Bind(3, m.split())
                                 .Bind(4, EncodeBins(m.bins()))
                                 .Run());
    } else {
      del_bins->Reset();
      MIXCAL_RETURN_IF_ERROR(
          del_bins->Bind(1, job).Bind(2, m.epoch()).Bind(3, m.split()).Run());
    }
  }
  return absl::OkStatus();
}

absl::Status ReportLog::WriteCheckpoint(
    const v1::ReportCheckpointRequest& checkpoint) {
  const v1::Lease& lease = checkpoint.lease();
  const uint32_t epoch = checkpoint.epoch();
  const std::string& path = checkpoint.path();
  // A checkpoint's epoch must be one of the job's ...
  MIXCAL_ASSIGN_OR_RETURN(JobRules rules, ReadRules(c_, lease.job_id()));
  const int epochs = rules.epochs;
  if (epoch < 1 || epoch > static_cast<uint32_t>(epochs)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "epoch must be in [1, ", epochs, "] (the job's epochs), got ", epoch));
  }
  // ... and every epoch up to it must be stored: the next attempt resumes
  // after the checkpoint and never reports those epochs again. (A batch
  // whose epoch insert failed, as on a full disk, once let the checkpoint
  // after it through, and the job ended SUCCEEDED with epochs missing.)
  // UNAVAILABLE: the worker resends, in order, the epoch and then this.
  MIXCAL_ASSIGN_OR_RETURN(const int64_t stored,
                          StoredEpochs(c_, lease.job_id(), epoch));
  if (stored != epoch) {
    return absl::UnavailableError(
        absl::StrCat("checkpoint of job ", lease.job_id(), " at epoch ", epoch,
                     " not recorded: only ", stored, " of its epochs 1..",
                     epoch, " are stored; resend them first"));
  }
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement s,
      c_.db()->Cached("UPDATE jobs SET checkpoint = ?, checkpoint_epoch = ? "
                      "WHERE id = ? AND checkpoint_epoch <= ?"));
  return s->Bind(1, path)
      .Bind(2, epoch)
      .Bind(3, lease.job_id())
      .Bind(4, epoch)
      .Run();
}

absl::StatusOr<v1::JobState> ReportLog::WriteFinish(
    const v1::FinishJobRequest& finish) {
  const v1::Lease& lease = finish.lease();
  const v1::JobState outcome = finish.outcome();
  const std::string& error = finish.error();
  v1::JobState state = v1::JOB_STATE_UNSPECIFIED;
  if (absl::Status fenced = CheckLease(c_, lease, &state); !fenced.ok()) {
    // Repeated, or cancelled by a person meanwhile: the lease's attempt is
    // still the job's, and the job already ended so.
    if (absl::IsFailedPrecondition(fenced) &&
        (state == v1::CANCELLED || state == outcome)) {
      return state;
    }
    return fenced;
  }
  MIXCAL_ASSIGN_OR_RETURN(v1::Job job, ReadJob(c_, lease.job_id()));
  {
    absl::MutexLock lock(&kept_mu_);  // the next attempt is checked afresh
    kept_.erase(job.id());
  }
  if (outcome == v1::SUCCEEDED) {
    // Success means every epoch of the job is stored.
    MIXCAL_ASSIGN_OR_RETURN(JobRules rules, ReadRules(c_, job.id()));
    MIXCAL_ASSIGN_OR_RETURN(const int64_t stored,
                            StoredEpochs(c_, job.id(), rules.epochs));
    if (stored != rules.epochs) {
      return absl::InvalidArgumentError(absl::StrCat(
          "outcome SUCCEEDED needs every epoch 1..", rules.epochs, " of job ",
          job.id(), " stored; ", stored, " are"));
    }
  }
  if (outcome == v1::QUEUED) {
    // Handed back on purpose: straight back to the queue (no lease expiry
    // to wait for), its checkpoint kept, and the attempt not counted.
    MIXCAL_ASSIGN_OR_RETURN(
        CachedStatement h,
        c_.db()->Cached("UPDATE jobs SET state = " JOB_QUEUED
                        ", worker_id = NULL, "
                        "lease_expires_at = 0, handbacks = handbacks + 1, "
                        "error = ? WHERE id = ?"));
    const std::string why = ToValidUtf8(error, 4096);
    MIXCAL_RETURN_IF_ERROR(h->Bind(1, why).Bind(2, job.id()).Run());
    MIXCAL_RETURN_IF_ERROR(
        AddEvent(c_, job.sweep_id(), job.id(), "handed_back",
                 absl::StrCat("worker ", job.worker_id(), ", attempt ",
                              job.attempt(), why.empty() ? "" : ": ", why)));
    MIXCAL_RETURN_IF_ERROR(UpdateSweepState(c_, job.sweep_id()));
    return v1::QUEUED;
  }
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement s,
      c_.db()->Cached("UPDATE jobs SET state = ?, error = ?, "
                      "finished_at = ?, lease_expires_at = 0 "
                      "WHERE id = ?"));
  // Cut at a character boundary and mended: a stored string is sent back
  // to every client that lists the job, and Protobuf needs UTF-8.
  const std::string text = ToValidUtf8(error, 4096);
  MIXCAL_RETURN_IF_ERROR(s->Bind(1, static_cast<int>(outcome))
                             .Bind(2, text)
                             .Bind(3, c_.clock()->NowMicros())
                             .Bind(4, job.id())
                             .Run());
  std::string kind = absl::AsciiStrToLower(v1::JobState_Name(outcome));
  MIXCAL_RETURN_IF_ERROR(AddEvent(c_, job.sweep_id(), job.id(), kind, text));
  if (outcome == v1::FAILED && finish.sweep_wide()) {
    // The sweep's model or data is unusable: its queued jobs would each
    // fail the same way; they end now, with the reason.
    MIXCAL_ASSIGN_OR_RETURN(
        CachedStatement rest,
        c_.db()->Cached("UPDATE jobs SET state = ?, error = ?, finished_at = ? "
                        "WHERE sweep_id = ? AND state = " JOB_QUEUED));
    MIXCAL_RETURN_IF_ERROR(
        rest->Bind(1, static_cast<int>(v1::FAILED))
            .Bind(2, ToValidUtf8(absl::StrCat("as job ", job.id(), ": ", text),
                                 4096))
            .Bind(3, c_.clock()->NowMicros())
            .Bind(4, job.sweep_id())
            .Run());
    if (const int n = c_.db()->Changes(); n > 0) {
      MIXCAL_RETURN_IF_ERROR(AddEvent(
          c_, job.sweep_id(), job.id(), "failed_alike",
          absl::StrCat(n, " queued jobs of the sweep failed with job ",
                       job.id(), ": the model or data they share is unusable")));
    }
  }
  MIXCAL_RETURN_IF_ERROR(UpdateSweepState(c_, job.sweep_id()));
  return outcome;
}

}  // namespace mixcal::storage
