#include "storage/internal/report_checks.h"

#include <cmath>
#include <cstring>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status_macros.h"
#include "base/utf8.h"
#include "calib/metric_table.h"
#include "calib/predictions.h"
#include "spec/metric_values.h"
#include "spec/spec.h"
#include "storage/internal/rows.h"

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
      return absl::InvalidArgumentError(
          absl::StrCat("metrics[", i, "].count must be in [0, ", kMaxExamples,
                       "], got ", m.count()));
    }
    for (const auto& [name, value] : m.more_metrics()) {
      const calib::Metric* metric = calib::FindMetric(name);
      if (metric == nullptr || spec::HasField(*metric)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "metrics[", i, "].more_metrics holds \"", Echo(name),
            "\", which is not a metric of the table without a field of its "
            "own (the table: ", calib::MetricNames(), ")"));
      }
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
      return absl::InvalidArgumentError(
          absl::StrCat("metrics[", i,
                       "].estimators must be UTF-8 of at most 512 bytes, "
                       "got ",
                       m.estimators().size(), " bytes"));
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
      return absl::InvalidArgumentError(
          absl::StrCat("metrics[", i, "].bins must add up to count ", m.count(),
                       " examples, got ", binned));
    }
  }
  if (req.data().size() > 16384) {
    return absl::InvalidArgumentError(absl::StrCat(
        "data must be at most 16384 bytes, got ", req.data().size()));
  }
  if (req.predictions_size() > 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("predictions must hold at most 4 splits, got ",
                     req.predictions_size()));
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
      return absl::InvalidArgumentError(
          absl::StrCat("predictions[", i,
                       "] must have count >= 1, classes >= 2 and count "
                       "x classes at most ",
                       calib::kMaxPredictionValues, ", got ", p.count(), " x ",
                       p.classes()));
    }
    if (absl::StatusOr<std::vector<int32_t>> labels = calib::DecodeLabels(
            p.labels(), p.count(), static_cast<int>(p.classes()));
        !labels.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "predictions[", i, "].labels: ", labels.status().message()));
    }
    if (!p.label_log_probs().empty()) {
      if (static_cast<int64_t>(p.label_log_probs().size()) !=
          4 * int64_t{p.count()}) {
        return absl::InvalidArgumentError(absl::StrCat(
            "predictions[", i, "].label_log_probs must hold ",
            4 * int64_t{p.count()}, " bytes (", p.count(),
            " float32), got ", p.label_log_probs().size()));
      }
      for (uint32_t r = 0; r < p.count(); ++r) {
        float v;
        std::memcpy(&v, p.label_log_probs().data() + 4 * r, 4);
        if (!(v <= 1e-3f)) {  // NaN fails too; log p is at most 0
          return absl::InvalidArgumentError(absl::StrCat(
              "predictions[", i, "].label_log_probs[", r,
              "] must be a log-probability (<= 0), got ", v));
        }
      }
    }
    if (static_cast<int64_t>(p.probabilities().size()) != 2 * values) {
      return absl::InvalidArgumentError(
          absl::StrCat("predictions[", i, "].probabilities must hold ",
                       2 * values, " bytes (", p.count(), " x ", p.classes(),
                       " float16), got ", p.probabilities().size()));
    }
  }
  return absl::OkStatus();
}

// A checkpoint is named relative to the workers' checkpoint directory, and
// must stay inside it: a worker that reported "/etc/passwd" or
// "../../etc/shadow" would have the next worker of the job read that file.
absl::Status ValidateCheckpoint(const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("path must not be empty");
  MIXCAL_RETURN_IF_ERROR(CheckText("path", path, spec::kMaxPathLength));
  auto refuse = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("path must be relative to the checkpoint directory (like "
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

absl::Status CheckReport(const v1::WorkerReport& report) {
  if (report.has_epoch()) return ValidateReport(report.epoch());
  if (report.has_checkpoint())
    return ValidateCheckpoint(report.checkpoint().path());
  if (report.has_finish()) return ValidateOutcome(report.finish().outcome());
  return absl::InvalidArgumentError(
      "report must hold an epoch, a checkpoint or a finish");
}

}  // namespace mixcal::storage
