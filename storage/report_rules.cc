// ReportLog's checks of an epoch report against its job, and the admission
// of kept predictions to be appended before the lock (report_log.h).

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/status_macros.h"
#include "base/utf8.h"
#include "calib/config.h"
#include "storage/internal/connection.h"
#include "storage/internal/job_rules.h"
#include "storage/internal/sqlite.h"
#include "storage/report_log.h"

namespace mixcal::storage {

absl::Status ReportLog::CheckAgainstJob(const v1::ReportEpochRequest& report,
                                        const PreparedReport* prepared) {
  const int64_t job = report.lease().job_id();
  MIXCAL_ASSIGN_OR_RETURN(JobRules rules, ReadRules(c_, job));
  const uint32_t epoch = report.metrics(0).epoch();
  if (epoch < 1 || epoch > static_cast<uint32_t>(rules.epochs)) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics[0].epoch must be in [1, ", rules.epochs,
                     "] (the job's epochs), got ", epoch));
  }
  // In order: every earlier epoch is stored (a resumed attempt starts after
  // its checkpoint, whose epochs are all stored).
  MIXCAL_ASSIGN_OR_RETURN(const int64_t before,
                          StoredEpochs(c_, job, epoch - 1));
  if (before != static_cast<int64_t>(epoch) - 1) {
    return absl::AbortedError(absl::StrCat(
        "job ", job, ": epoch ", epoch, " before its epochs 1..", epoch - 1,
        " are stored (", before, " are); resend from the oldest"));
  }
  // The test split's size is the job's: the same at every epoch.
  const v1::EpochMetrics* test = nullptr;
  for (int i = 0; i < report.metrics_size(); ++i) {
    const v1::EpochMetrics& m = report.metrics(i);
    if (m.split() != "test") continue;
    test = &m;
    MIXCAL_ASSIGN_OR_RETURN(
        CachedStatement size,
        c_.db()->Cached("SELECT count FROM epoch_metrics WHERE job_id = ? "
                        "AND split = 'test' AND epoch != ? LIMIT 1"));
    size->Bind(1, job).Bind(2, epoch);
    MIXCAL_ASSIGN_OR_RETURN(bool seen, size->Step());
    const int64_t stored = seen ? size->Int(0) : -1;
    size->Reset();
    if (seen && stored != static_cast<int64_t>(m.count())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metrics[", i, "].count must be the test split's size ", stored,
          " (as at the job's other epochs), got ", m.count()));
    }
  }
  if (report.predictions_size() == 0) return absl::OkStatus();
  int64_t bytes = 0;
  for (int k = 0; k < report.predictions_size(); ++k) {
    const v1::Predictions& p = report.predictions(k);
    if (p.split() != "test") {
      return absl::InvalidArgumentError(absl::StrCat(
          "predictions[", k, "].split must be test (the one split kept), got \"",
          ToValidUtf8(p.split(), 32), "\""));
    }
    if (!calib::KeepsPredictions(rules.policy, static_cast<int>(epoch))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "predictions[", k, "]: the sweep keeps predictions at ",
          KeptInWords(rules.policy), "; epoch ", epoch, " is not one of them"));
    }
    if (test == nullptr || p.count() != test->count()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "predictions[", k, "].count must be the test split's size ",
          test == nullptr ? std::string("(its metrics in the same report)")
                          : absl::StrCat(test->count()),
          ", got ", p.count()));
    }
    bytes += prepared != nullptr && prepared->in_file()
                 ? prepared->predictions[k].bytes
                 : static_cast<int64_t>(p.probabilities().size() +
                                        p.labels().size() +
                                        p.label_log_probs().size());
  }
  // What the policy keeps, at most kKeptReplays times over (resent
  // reports append again), plus room for a few: beyond it, refused.
  int kept_epochs = 0;
  for (int e = 1; e <= rules.epochs; ++e)
    kept_epochs += calib::KeepsPredictions(rules.policy, e) ? 1 : 0;
  const int64_t limit = kKeptReplays * kept_epochs * bytes + (64 << 20);
  absl::MutexLock lock(&kept_mu_);
  KeptJob& kept = kept_[job];
  kept.lease = report.lease();
  kept.policy = rules.policy;
  kept.test_count = test->count();
  kept.limit = limit;
  if (prepared == nullptr || !prepared->in_file()) {
    if (kept.sent + bytes > limit) {
      return absl::InvalidArgumentError(absl::StrCat(
          "predictions: job ", job, " has sent ", kept.sent,
          " bytes of kept predictions; ", bytes, " more passes its bound of ",
          limit, " (", kKeptReplays, " times what its policy keeps, + 64 MiB)"));
    }
    kept.sent += bytes;
  }
  return absl::OkStatus();
}

bool ReportLog::AdmitPrepared(const v1::ReportEpochRequest& report) {
  const v1::Lease& lease = report.lease();
  int64_t bytes = 0;
  absl::MutexLock lock(&kept_mu_);
  auto it = kept_.find(lease.job_id());
  if (it == kept_.end()) return false;
  KeptJob& kept = it->second;
  if (kept.lease.attempt() != lease.attempt() ||
      kept.lease.token() != lease.token()) {
    return false;
  }
  for (const v1::Predictions& p : report.predictions()) {
    if (p.split() != "test" || p.count() != kept.test_count ||
        !calib::KeepsPredictions(kept.policy, static_cast<int>(p.epoch()))) {
      return false;
    }
    bytes += static_cast<int64_t>(p.probabilities().size() + p.labels().size() +
                                  p.label_log_probs().size());
  }
  if (kept.sent + bytes > kept.limit) return false;
  kept.sent += bytes;
  return true;
}


}  // namespace mixcal::storage
