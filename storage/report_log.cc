#include "storage/store.h"

#include "calib/predictions.h"
#include "storage/internal/blob_file.h"

#include <cmath>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "spec/spec.h"
#include "base/status_macros.h"
#include "base/utf8.h"
#include "storage/internal/job_states.h"
#include "storage/internal/lease_token.h"
#include "storage/internal/rows.h"
#include "storage/internal/sqlite.h"
#include "storage/internal/store_locks.h"
#include "storage/internal/bins_codec.h"
#include "calib/metric_table.h"
#include "calib/metrics.h"
#include "spec/metric_values.h"

namespace mixcal::storage {

namespace {

// Examples in one split of one epoch, at most: counts beyond it are refused
// before they can overflow a sum.
constexpr int64_t kMaxExamples = int64_t{1} << 40;

absl::Status ValidateReport(const v1::ReportEpochRequest& req) {
  const auto& metrics = req.metrics();
  if (metrics.empty() || metrics.size() > 16) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics must hold 1 to 16 splits, got ", metrics.size()));
  }
  const uint32_t epoch = metrics[0].epoch();
  for (int i = 0; i < metrics.size(); ++i) {
    const v1::EpochMetrics& m = metrics[i];
    if (m.epoch() < 1 || m.epoch() > 100000 || m.epoch() != epoch) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metrics[", i,
          "].epoch must be in [1, 100000] and the same for all splits, got ",
          m.epoch()));
    }
    if (!ValidSplitName(m.split())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metrics[", i, "].split must be 1 to 32 of [a-z0-9_-], got \"",
          Echo(m.split()), "\""));
    }
    if (m.job_id() != 0 && m.job_id() != req.lease().job_id()) {
      return absl::InvalidArgumentError(
          absl::StrCat("metrics[", i, "].job_id ", m.job_id(),
                       " is not the lease's job ", req.lease().job_id()));
    }
    if (m.count() < 0 || m.count() > kMaxExamples) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metrics[", i, "].count must be in [0, ", kMaxExamples, "], got ",
          m.count()));
    }
    for (const calib::Metric& metric : calib::Metrics()) {
      const std::optional<double> v = spec::MetricValue(m, metric);
      if (v && !(std::isfinite(*v) && *v >= metric.min && *v <= metric.max)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "metrics[", i, "].", metric.name, " must be finite and in [",
            metric.min, ", ", metric.max, "], got ", *v));
      }
    }
    if (m.estimators().size() > 512 || !IsValidUtf8(m.estimators())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metrics[", i, "].estimators must be UTF-8 of at most 512 bytes, "
          "got ", m.estimators().size(), " bytes"));
    }
    if (m.calibration().size() > 256 * 1024 || !IsValidUtf8(m.calibration())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metrics[", i, "].calibration must be UTF-8 of at most 256 KB, got ",
          m.calibration().size(), " bytes"));
    }
    if (!std::isfinite(m.wall_seconds()) || m.wall_seconds() < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metrics[", i, "].wall_seconds must be finite and >= 0, got ",
          m.wall_seconds()));
    }
    if (m.bins_size() > 1000) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metrics[", i, "].bins must have at most 1000 bins, got ",
          m.bins_size()));
    }
    int64_t binned = 0;
    for (int b = 0; b < m.bins_size(); ++b) {
      const v1::ReliabilityBin& bin = m.bins(b);
      if (bin.count() > kMaxExamples) {
        return absl::InvalidArgumentError(absl::StrCat(
            "metrics[", i, "].bins[", b, "].count must be at most ",
            kMaxExamples, ", got ", bin.count()));
      }
      if (bin.count() < 0 || bin.correct() < 0 || bin.correct() > bin.count() ||
          !(bin.confidence_sum() >= 0 &&
            bin.confidence_sum() <= static_cast<double>(bin.count()))) {
        return absl::InvalidArgumentError(
            absl::StrCat("metrics[", i, "].bins[", b,
                         "] must have count >= 0, correct in [0, count] and "
                         "confidence_sum in [0, count], got count ",
                         bin.count(), ", correct ", bin.correct(),
                         ", confidence_sum ", bin.confidence_sum()));
      }
      binned += bin.count();
    }
    // The bins are the source of truth for ECE: they must account for the
    // split's examples exactly.
    if (m.bins_size() > 0 && binned != m.count()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metrics[", i, "].bins must add up to count ", m.count(),
          " examples, got ", binned));
    }
  }
  if (req.predictions_size() > 4) {
    return absl::InvalidArgumentError(absl::StrCat(
        "predictions must hold at most 4 splits, got ", req.predictions_size()));
  }
  for (int i = 0; i < req.predictions_size(); ++i) {
    const v1::Predictions& p = req.predictions(i);
    if (p.epoch() != epoch) {
      return absl::InvalidArgumentError(
          absl::StrCat("predictions[", i, "].epoch must be the metrics' epoch ",
                       epoch, ", got ", p.epoch()));
    }
    if (!ValidSplitName(p.split())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "predictions[", i, "].split must be 1 to 32 of [a-z0-9_-], got \"",
          Echo(p.split()), "\""));
    }
    if (p.job_id() != 0 && p.job_id() != req.lease().job_id()) {
      return absl::InvalidArgumentError(
          absl::StrCat("predictions[", i, "].job_id ", p.job_id(),
                       " is not the lease's job ", req.lease().job_id()));
    }
    const int64_t values = int64_t{p.count()} * p.classes();
    if (p.count() < 1 || p.classes() < 2 || p.classes() > 100000 ||
        values > calib::kMaxPredictionValues) {
      return absl::InvalidArgumentError(absl::StrCat(
          "predictions[", i, "] must have count >= 1, classes >= 2 and count "
          "x classes at most ", calib::kMaxPredictionValues, ", got ",
          p.count(), " x ", p.classes()));
    }
    if (absl::StatusOr<std::vector<int32_t>> labels =
            calib::DecodeLabels(p.labels(), p.count(), static_cast<int>(p.classes()));
        !labels.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "predictions[", i, "].labels: ", labels.status().message()));
    }
    if (static_cast<int64_t>(p.probabilities().size()) != 2 * values) {
      return absl::InvalidArgumentError(absl::StrCat(
          "predictions[", i, "].probabilities must hold ", 2 * values,
          " bytes (", p.count(), " x ", p.classes(), " float16), got ",
          p.probabilities().size()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

namespace {

// A checkpoint is named relative to the workers' checkpoint directory, and
// must stay inside it: a worker that reported "/etc/passwd" or
// "../../etc/shadow" would have the next worker of the job read that file.
absl::Status ValidateCheckpoint(const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("path must not be empty");
  MIXCAL_RETURN_IF_ERROR(CheckText("path", path, spec::kMaxPathLength));
  auto refuse = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "path must be relative to the checkpoint directory (like "
        "job-12/epoch-3.pt): ",
        why, "; got ", Echo(path)));
  };
  if (path.front() == '/') return refuse("no leading '/'");
  for (const char c : path) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' &&
        c != '_' && c != '-' && c != '/') {
      return refuse("only letters, digits, '.', '_', '-' and '/'");
    }
  }
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part.empty() || part == "." || part == "..")
      return refuse("no empty, '.' or '..' parts");
  }
  return absl::OkStatus();
}

absl::Status ValidateOutcome(v1::JobState outcome) {
  if (outcome != v1::SUCCEEDED && outcome != v1::FAILED &&
      outcome != v1::CANCELLED && outcome != v1::QUEUED) {
    return absl::InvalidArgumentError(absl::StrCat(
        "outcome must be SUCCEEDED, FAILED, CANCELLED or QUEUED (handed back), "
        "got ",
        v1::JobState_Name(outcome)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Store::ReportEpoch(const v1::Lease& lease,
                                const std::vector<v1::EpochMetrics>& metrics) {
  v1::ReportEpochRequest req;
  *req.mutable_lease() = lease;
  for (const v1::EpochMetrics& m : metrics) *req.add_metrics() = m;
  return ReportEpoch(req);
}

absl::Status Store::ReportEpoch(const v1::ReportEpochRequest& report) {
  const ReportItem item{&report, nullptr, nullptr};
  return StoreItems({&item, 1})[0].status;
}

std::vector<ReportResult> Store::StoreReports(
    absl::Span<const v1::WorkerReport* const> reports,
    absl::Span<const PreparedReport* const> prepared) {
  std::vector<ReportItem> items;
  items.reserve(reports.size());
  for (size_t i = 0; i < reports.size(); ++i) {
    const v1::WorkerReport* r = reports[i];
    items.push_back({r->has_epoch() ? &r->epoch() : nullptr,
                     r->has_checkpoint() ? &r->checkpoint() : nullptr,
                     r->has_finish() ? &r->finish() : nullptr,
                     i < prepared.size() ? prepared[i] : nullptr});
  }
  return StoreItems(items);
}

namespace {
// A report's own checks, before any lease or row is looked at.
absl::Status CheckReport(const v1::ReportEpochRequest* epoch,
                         const v1::ReportCheckpointRequest* checkpoint,
                         const v1::FinishJobRequest* finish) {
  if (epoch != nullptr) return ValidateReport(*epoch);
  if (checkpoint != nullptr) return ValidateCheckpoint(checkpoint->path());
  if (finish != nullptr) return ValidateOutcome(finish->outcome());
  return absl::InvalidArgumentError(
      "report must hold an epoch, a checkpoint or a finish");
}
}  // namespace

PreparedReport Store::PrepareReport(v1::WorkerReport* report) {
  PreparedReport out;
  out.checked = CheckReport(report->has_epoch() ? &report->epoch() : nullptr,
                            report->has_checkpoint() ? &report->checkpoint() : nullptr,
                            report->has_finish() ? &report->finish() : nullptr);
  if (!out.checked.ok() || !report->has_epoch() ||
      report->epoch().predictions_size() == 0) {
    return out;
  }
  const std::shared_ptr<BlobFile> blobs = Blobs();
  if (blobs == nullptr) return out;  // the bytes go in the rows
  for (const v1::Predictions& p : report->epoch().predictions()) {
    absl::StatusOr<BlobRef> ref = blobs->Append(p.probabilities(), p.labels());
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
  }
  return out;
}

std::vector<ReportResult> Store::StoreItems(
    absl::Span<const ReportItem> items) {
  std::vector<ReportResult> results(items.size());
  std::vector<ReportItem> valid;
  std::vector<size_t> where;
  for (size_t i = 0; i < items.size(); ++i) {
    const ReportItem& it = items[i];
    const absl::Status s =
        it.prepared != nullptr ? it.prepared->checked
                               : CheckReport(it.epoch, it.checkpoint, it.finish);
    results[i].status = s;
    if (s.ok()) {
      valid.push_back(it);
      where.push_back(i);
    }
  }
  if (valid.empty()) return results;
  std::vector<ReportResult> written;
  {
    ReportLock lock(this);
    written = WriteItems(valid);
  }
  for (size_t k = 0; k < where.size(); ++k)
    results[where[k]] = std::move(written[k]);
  return results;
}

std::vector<ReportResult> Store::WriteItems(
    absl::Span<const ReportItem> items) {
  std::vector<ReportResult> results(items.size());
  // Fast: no savepoint per item. A refusal (stale lease, a finished job) is
  // found before anything of its item is written, so it needs none; a write
  // failing after its checks (I/O, a full disk) rolls back the batch, which
  // is then written again with a savepoint per item, so that only that item
  // fails.
  absl::Status s = WriteBatch(items, /*savepoints=*/false, &results);
  if (s.ok()) return results;
  s = WriteBatch(items, /*savepoints=*/true, &results);
  if (!s.ok()) {
    for (ReportResult& r : results)
      if (r.status.ok()) r.status = s;
  }
  return results;
}

namespace {
// Refusals that come before an item writes anything.
bool Refusal(const absl::Status& s) {
  return absl::IsFailedPrecondition(s) || absl::IsNotFound(s) ||
         absl::IsInvalidArgument(s) || absl::IsPermissionDenied(s);
}
}  // namespace

absl::Status Store::WriteBatch(absl::Span<const ReportItem> items,
                               bool savepoints,
                               std::vector<ReportResult>* results) {
  auto exec_cached = [&](const char* sql) -> absl::Status {
    MIXCAL_ASSIGN_OR_RETURN(CachedStatement st, db_->Cached(sql));
    return st->Run();
  };
  Transaction txn(db_.get());
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
      r.status = CheckLease(l, &r.state);
      if (r.status.ok()) r.state = v1::JOB_STATE_UNSPECIFIED;
      it = leases.emplace(key, std::move(r)).first;
    }
    return it->second;
  };
  std::map<int64_t, uint32_t> last_epoch;  // per job, of the epochs stored
  // unstored_ as this batch changes it; kept only if it commits.
  std::map<std::pair<int64_t, int64_t>, uint32_t> unstored = unstored_;
  for (size_t i = 0; i < items.size(); ++i) {
    const ReportItem& it = items[i];
    ReportResult& result = (*results)[i];
    result = ReportResult();
    const v1::Lease& item_lease = it.epoch != nullptr ? it.epoch->lease()
                                  : it.checkpoint != nullptr
                                      ? it.checkpoint->lease()
                                      : it.finish->lease();
    const auto attempt_key =
        std::make_pair(item_lease.job_id(),
                       static_cast<int64_t>(item_lease.attempt()));
    const uint32_t item_epoch =
        it.epoch != nullptr     ? it.epoch->metrics(0).epoch()
        : it.checkpoint != nullptr ? it.checkpoint->epoch()
                                   : 0;
    if (auto hole = unstored.find(attempt_key); hole != unstored.end()) {
      const bool after =
          it.finish != nullptr ||
          (it.checkpoint != nullptr && item_epoch >= hole->second) ||
          (it.epoch != nullptr && item_epoch > hole->second);
      if (after) {
        result.status = absl::AbortedError(absl::StrCat(
            "job ", item_lease.job_id(), ": epoch ", hole->second,
            " is not stored yet; resend from it"));
        continue;
      }
    }
    if (it.finish == nullptr) {
      const v1::Lease& lease =
          it.epoch != nullptr ? it.epoch->lease() : it.checkpoint->lease();
      const ReportResult& lease_check = check(lease);
      if (!lease_check.status.ok()) {
        result = lease_check;
        continue;
      }
    }
    if (savepoints) MIXCAL_RETURN_IF_ERROR(exec_cached("SAVEPOINT report"));
    absl::Status s;
    if (it.epoch != nullptr) {
      s = WriteReportRows(*it.epoch, it.prepared);
    } else if (it.checkpoint != nullptr) {
      s = CheckpointLocked(it.checkpoint->lease(), it.checkpoint->epoch(),
                           it.checkpoint->path());
    } else {
      const int64_t job = it.finish->lease().job_id();
      // The job's newest epoch goes in before its state changes.
      if (auto e = last_epoch.find(job); e != last_epoch.end()) {
        s = SetLastEpoch(job, e->second);
        last_epoch.erase(e);
      }
      if (s.ok()) {
        absl::StatusOr<v1::JobState> state = FinishLocked(
            it.finish->lease(), it.finish->outcome(), it.finish->error());
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
      exec_cached("ROLLBACK TO report").IgnoreError();
      if (it.epoch != nullptr && !Refusal(s)) {
        auto [hole, fresh] = unstored.emplace(attempt_key, item_epoch);
        if (!fresh) hole->second = std::min(hole->second, item_epoch);
      }
    } else if (it.epoch != nullptr) {
      if (auto hole = unstored.find(attempt_key);
          hole != unstored.end() && hole->second == item_epoch) {
        unstored.erase(hole);
      }
    }
    if (savepoints) exec_cached("RELEASE report").IgnoreError();
    result.status = s;
    if (s.ok() && it.epoch != nullptr) {
      uint32_t& e = last_epoch[it.epoch->lease().job_id()];
      e = std::max(e, it.epoch->metrics(0).epoch());
    }
  }
  for (const auto& [job, epoch] : last_epoch)
    MIXCAL_RETURN_IF_ERROR(SetLastEpoch(job, epoch));
  MIXCAL_RETURN_IF_ERROR(txn.Commit());
  unstored_ = std::move(unstored);
  return absl::OkStatus();
}

absl::Status Store::SetLastEpoch(int64_t job, uint32_t epoch) {
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement last,
      db_->Cached(
          "UPDATE jobs SET last_epoch = MAX(last_epoch, ?) WHERE id = ?"));
  return last->Bind(1, epoch).Bind(2, job).Run();
}

absl::Status Store::WriteReportRows(const v1::ReportEpochRequest& report,
                                    const PreparedReport* prepared) {
  const int64_t job = report.lease().job_id();
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement put,
      db_->Cached("INSERT OR REPLACE INTO epoch_metrics (job_id, epoch, split, "
                  "count, accuracy, "
                  "nll, brier, ece, mce, oe, adaptive_ece, mean_confidence, "
                  "mean_entropy, auroc, "
                  "temperature, train_loss, train_accuracy, lr, "
                  "samples_per_sec, wall_seconds, attempt, classwise_ece, "
                  "l2_ce_debiased, brier_reliability, brier_resolution, "
                  "brier_uncertainty, aurc, fpr95, aupr, estimators, "
                  "calibration, ece_low, ece_high, mmce, tace, rmsce, smece) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                  "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement put_bins,
      db_->Cached("INSERT OR REPLACE INTO epoch_bins (job_id, epoch, split, "
                  "bins) VALUES (?, ?, ?, ?)"));
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement del_bins,
      db_->Cached("DELETE FROM epoch_bins WHERE job_id = ? AND epoch = ? AND "
                  "split = ?"));
  if (report.predictions_size() > 0) {
    MIXCAL_ASSIGN_OR_RETURN(
        CachedStatement put_pred,
        db_->Cached("INSERT OR REPLACE INTO predictions (job_id, epoch, "
                    "split, count, classes, probabilities, labels, attempt, "
                    "file_offset, file_bytes, file_hash) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    // Appended by PrepareReport already, or here.
    if (prepared != nullptr) {
      MIXCAL_RETURN_IF_ERROR(prepared->appended);
      if (prepared->in_file() && static_cast<int>(prepared->predictions.size()) !=
                                   report.predictions_size()) {
        return absl::InternalError("prepared predictions do not match the report");
      }
    }
    const std::shared_ptr<BlobFile> blobs =
        prepared != nullptr && prepared->in_file() ? nullptr : Blobs();
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
        MIXCAL_ASSIGN_OR_RETURN(ref, blobs->Append(p.probabilities(), p.labels()));
      }
      if (ref) {
        put_pred->BindBlob(6, "")
            .BindBlob(7, "")
            .Bind(9, ref->offset)
            .Bind(10, ref->bytes)
            .Bind(11, static_cast<int64_t>(ref->hash));
      } else {
        put_pred->BindBlob(6, p.probabilities())
            .BindBlob(7, p.labels())
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
        .Bind(5, m.accuracy())
        .Bind(6, m.nll())
        .Bind(7, m.brier())
        .Bind(8, m.ece())
        .Bind(9, m.mce())
        .Bind(10, m.oe())
        .Bind(11, m.adaptive_ece())
        .Bind(12, m.mean_confidence())
        .Bind(13, m.mean_entropy())
        .Bind(14,
              m.has_auroc() ? std::optional<double>(m.auroc()) : std::nullopt)
        .Bind(15, m.has_temperature() ? std::optional<double>(m.temperature())
                                      : std::nullopt)
        .Bind(16, m.train_loss())
        .Bind(17, m.train_accuracy())
        .Bind(18, m.lr())
        .Bind(19, m.samples_per_sec())
        .Bind(20, m.wall_seconds())
        .Bind(21, report.lease().attempt());
    auto opt = [](bool has, double v) {
      return has ? std::optional<double>(v) : std::nullopt;
    };
    put->Bind(22, opt(m.has_classwise_ece(), m.classwise_ece()))
        .Bind(23, opt(m.has_l2_ce_debiased(), m.l2_ce_debiased()))
        .Bind(24, opt(m.has_brier_reliability(), m.brier_reliability()))
        .Bind(25, opt(m.has_brier_resolution(), m.brier_resolution()))
        .Bind(26, opt(m.has_brier_uncertainty(), m.brier_uncertainty()))
        .Bind(27, opt(m.has_aurc(), m.aurc()))
        .Bind(28, opt(m.has_fpr95(), m.fpr95()))
        .Bind(29, opt(m.has_aupr(), m.aupr()))
        .Bind(30, m.estimators())
        .Bind(31, m.calibration())
        .Bind(32, opt(m.has_ece_low(), m.ece_low()))
        .Bind(33, opt(m.has_ece_high(), m.ece_high()))
        .Bind(34, opt(m.has_mmce(), m.mmce()))
        .Bind(35, opt(m.has_tace(), m.tace()))
        .Bind(36, opt(m.has_rmsce(), m.rmsce()))
        .Bind(37, opt(m.has_smece(), m.smece()));
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

absl::Status Store::RecordCheckpoint(const v1::Lease& lease, uint32_t epoch,
                                     const std::string& path) {
  MIXCAL_RETURN_IF_ERROR(ValidateCheckpoint(path));
  RequestLock lock(this);
  Transaction txn(db_.get());
  MIXCAL_RETURN_IF_ERROR(txn.Begin());
  MIXCAL_RETURN_IF_ERROR(CheckLease(lease));
  MIXCAL_RETURN_IF_ERROR(CheckpointLocked(lease, epoch, path));
  return txn.Commit();
}

absl::Status Store::CheckpointLocked(const v1::Lease& lease, uint32_t epoch,
                                     const std::string& path) {
  // A checkpoint's epoch must be one of the job's ...
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement cfg,
      db_->Cached("SELECT config FROM jobs WHERE id = ?"));
  cfg->Bind(1, lease.job_id());
  MIXCAL_ASSIGN_OR_RETURN(bool found, cfg->Step());
  if (!found) {
    return absl::NotFoundError(absl::StrCat("no job ", lease.job_id()));
  }
  v1::JobConfig config;
  if (!config.ParseFromString(cfg->Blob(0))) {
    return absl::DataLossError(absl::StrCat(
        "job ", lease.job_id(), ": its stored config cannot be parsed"));
  }
  cfg->Reset();
  MIXCAL_ASSIGN_OR_RETURN(calib::TrainConfig train,
                          spec::ToTrainConfig(config));
  if (epoch < 1 || epoch > static_cast<uint32_t>(train.epochs)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "epoch must be in [1, ", train.epochs, "] (the job's epochs), got ",
        epoch));
  }
  // ... and every epoch up to it must be stored: the next attempt resumes
  // after the checkpoint and never reports those epochs again. (A batch
  // whose epoch insert failed, as on a full disk, once let the checkpoint
  // after it through, and the job ended SUCCEEDED with epochs missing.)
  // UNAVAILABLE: the worker resends, in order, the epoch and then this.
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement covered,
      db_->Cached("SELECT COUNT(DISTINCT epoch) FROM epoch_metrics "
                  "WHERE job_id = ? AND epoch BETWEEN 1 AND ?"));
  covered->Bind(1, lease.job_id()).Bind(2, epoch);
  MIXCAL_RETURN_IF_ERROR(covered->Step().status());
  const int64_t stored = covered->Int(0);
  covered->Reset();
  if (stored != epoch) {
    return absl::UnavailableError(absl::StrCat(
        "checkpoint of job ", lease.job_id(), " at epoch ", epoch,
        " not recorded: only ", stored, " of its epochs 1..", epoch,
        " are stored; resend them first"));
  }
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement s,
      db_->Cached("UPDATE jobs SET checkpoint = ?, checkpoint_epoch = ? "
                  "WHERE id = ? AND checkpoint_epoch <= ?"));
  return s->Bind(1, path)
      .Bind(2, epoch)
      .Bind(3, lease.job_id())
      .Bind(4, epoch)
      .Run();
}

absl::StatusOr<v1::JobState> Store::FinishJob(const v1::Lease& lease,
                                              v1::JobState outcome,
                                              const std::string& error) {
  MIXCAL_RETURN_IF_ERROR(ValidateOutcome(outcome));
  RequestLock lock(this);
  Transaction txn(db_.get());
  MIXCAL_RETURN_IF_ERROR(txn.Begin());
  MIXCAL_ASSIGN_OR_RETURN(v1::JobState state,
                          FinishLocked(lease, outcome, error));
  MIXCAL_RETURN_IF_ERROR(txn.Commit());
  return state;
}

absl::StatusOr<v1::JobState> Store::FinishLocked(const v1::Lease& lease,
                                                 v1::JobState outcome,
                                                 const std::string& error) {
  MIXCAL_ASSIGN_OR_RETURN(v1::Job job, GetJobLocked(lease.job_id()));
  if (job.attempt() != lease.attempt()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "stale lease: job ", job.id(), " attempt ", lease.attempt(),
        " is not current (attempt ", job.attempt(), ")"));
  }
  {
    MIXCAL_ASSIGN_OR_RETURN(
        CachedStatement t,
        db_->Cached("SELECT lease_token FROM jobs WHERE id = ?"));
    t->Bind(1, job.id());
    MIXCAL_RETURN_IF_ERROR(t->Step().status());
    if (!SameToken(t->Text(0), lease.token())) {
      return absl::PermissionDeniedError(absl::StrCat(
          "lease of job ", job.id(), " attempt ", lease.attempt(),
          " was not given to this caller (wrong lease token)"));
    }
  }
  if (job.state() == v1::CANCELLED || job.state() == outcome) {
    return job.state();  // repeated, or cancelled by a person meanwhile
  }
  if (job.state() != v1::RUNNING) {
    return absl::FailedPreconditionError(absl::StrCat(
        "stale lease: job ", job.id(), " is ", v1::JobState_Name(job.state())));
  }
  if (outcome == v1::QUEUED) {
    // Handed back on purpose: straight back to the queue (no lease expiry
    // to wait for), its checkpoint kept, and the attempt not counted.
    MIXCAL_ASSIGN_OR_RETURN(
        CachedStatement h,
        db_->Cached("UPDATE jobs SET state = " JOB_QUEUED ", worker_id = NULL, "
                    "lease_expires_at = 0, handbacks = handbacks + 1, "
                    "error = ? WHERE id = ?"));
    const std::string why = ToValidUtf8(error, 4096);
    MIXCAL_RETURN_IF_ERROR(h->Bind(1, why).Bind(2, job.id()).Run());
    MIXCAL_RETURN_IF_ERROR(AddEvent(
        job.sweep_id(), job.id(), "handed_back",
        absl::StrCat("worker ", job.worker_id(), ", attempt ", job.attempt(),
                     why.empty() ? "" : ": ", why)));
    MIXCAL_RETURN_IF_ERROR(UpdateSweepState(job.sweep_id()));
    return v1::QUEUED;
  }
  MIXCAL_ASSIGN_OR_RETURN(CachedStatement s,
                          db_->Cached("UPDATE jobs SET state = ?, error = ?, "
                                      "finished_at = ?, lease_expires_at = 0 "
                                      "WHERE id = ?"));
  // Cut at a character boundary and mended: a stored string is sent back
  // to every client that lists the job, and Protobuf needs UTF-8.
  const std::string text = ToValidUtf8(error, 4096);
  MIXCAL_RETURN_IF_ERROR(s->Bind(1, static_cast<int>(outcome))
                             .Bind(2, text)
                             .Bind(3, clock_->NowMicros())
                             .Bind(4, job.id())
                             .Run());
  std::string kind = absl::AsciiStrToLower(v1::JobState_Name(outcome));
  MIXCAL_RETURN_IF_ERROR(
      AddEvent(job.sweep_id(), job.id(), kind, text));
  MIXCAL_RETURN_IF_ERROR(UpdateSweepState(job.sweep_id()));
  return outcome;
}

}  // namespace mixcal::storage
