// MetricReader's kept predictions: read back (GetPredictions), split from
// the predictions file (PredictionBytes), and averaged into seed ensembles
// (metric_reader.h).

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "calib/predictions.h"
#include "storage/internal/blob_file.h"
#include "storage/internal/connection.h"
#include "storage/internal/records.h"
#include "storage/internal/rows.h"
#include "storage/internal/sqlite.h"
#include "storage/metric_reader.h"

namespace mixcal::storage {

absl::Status MetricReader::AppendEnsembles(
    const std::string& chosen, int64_t sweep_id, int bins,
    const std::optional<std::pair<std::string, double>>& ref,
    std::vector<v1::SummaryRow>* out) {
  // One configuration at a time: its seeds' probabilities summed, then
  // averaged; only one configuration's sums are held at once.
  MIXCAL_ASSIGN_OR_RETURN(
      Statement s,
      c_.db()->Prepare(absl::StrCat(
          "SELECT j.method, j.value, p.probabilities, p.labels, "
          "p.file_offset, p.file_bytes, p.file_hash, p.count, p.classes, "
          "p.job_id FROM (",
          chosen,
          ") c JOIN jobs j ON j.id = c.job_id JOIN predictions p ON "
          "p.job_id = c.job_id AND p.epoch = c.epoch AND p.split = 'test' "
          "ORDER BY j.method, j.value, j.id")));
  s.Bind(1, sweep_id);
  std::string method;
  double value = 0;
  int64_t count = 0;
  int classes = 0;
  int members = 0;
  bool consistent = true;
  std::vector<double> sum;
  std::string labels;
  std::vector<std::string> left_out;  // this configuration's damaged seeds
  auto flush = [&]() {
    if (members == 0 && left_out.empty()) return absl::OkStatus();
    if (members == 0 || !consistent) {
      // No ensemble: a row that says why, rather than silence.
      v1::SummaryRow row;
      row.set_method(method);
      row.set_value(value);
      row.set_split("test");
      row.set_ensemble(true);
      for (std::string& why : left_out) row.add_left_out(std::move(why));
      if (!consistent) {
        row.add_left_out(
            "the seeds predicted different test sets (synthetic data is "
            "drawn per seed; an ensemble averages one test set)");
      }
      out->push_back(std::move(row));
      return absl::OkStatus();
    }
    std::vector<float> mean(sum.size());
    for (size_t i = 0; i < sum.size(); ++i)
      mean[i] = static_cast<float>(sum[i] / members);
    MIXCAL_ASSIGN_OR_RETURN(std::vector<int32_t> y,
                            calib::DecodeLabels(labels, count, classes));
    const calib::ProbabilityMetrics m =
        calib::MetricsOfProbabilities(mean, y, classes, bins);
    v1::SummaryRow row;
    row.set_method(method);
    row.set_value(value);
    row.set_split("test");
    row.set_seeds(static_cast<uint32_t>(members));
    row.set_ensemble(true);
    for (std::string& why : left_out) row.add_left_out(std::move(why));
    if (ref) {
      row.set_vs_method(ref->first);
      row.set_vs_value(ref->second);
    }
    for (const auto& [name, v] : std::vector<std::pair<const char*, double>>{
             {"accuracy", m.accuracy},
             {"ece", m.ece},
             {"oe", m.oe},
             {"mce", m.mce},
             {"nll", m.nll},
             {"brier", m.brier},
             {"adaptive_ece", m.adaptive_ece},
             {"mean_confidence", m.mean_confidence},
             {"mean_entropy", m.mean_entropy}}) {
      v1::MetricStat* stat = row.add_stats();
      stat->set_metric(name);
      stat->set_mean(v);
      stat->set_count(1);
    }
    out->push_back(std::move(row));
    return absl::OkStatus();
  };
  while (true) {
    MIXCAL_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    const std::string m = s.Text(0);
    const double v = s.Double(1);
    if (m != method || v != value || (members == 0 && left_out.empty())) {
      MIXCAL_RETURN_IF_ERROR(flush());
      method = m;
      value = v;
      members = 0;
      consistent = true;
      left_out.clear();
    }
    const int64_t n = s.Int(7);
    const int k = static_cast<int>(s.Int(8));
    const int64_t job = s.Int(9);
    std::string probabilities, job_labels;
    // One seed's damaged bytes (a lost predictions file, a torn write) leave
    // that seed out, said on the row, not the whole summary.
    absl::Status read =
        PredictionBytes(s, 2, job, &probabilities, &job_labels);
    absl::StatusOr<std::vector<float>> decoded =
        read.ok() ? calib::DecodeProbabilities(probabilities, n, k)
                  : absl::StatusOr<std::vector<float>>(read);
    if (!decoded.ok()) {
      if (!absl::IsDataLoss(decoded.status()) &&
          !absl::IsInvalidArgument(decoded.status())) {
        return decoded.status();
      }
      left_out.push_back(
          absl::StrCat("job ", job, ": ", decoded.status().message()));
      continue;
    }
    const std::vector<float>& p = *decoded;
    if (members == 0) {
      count = n;
      classes = k;
      labels = std::move(job_labels);
      sum.assign(p.begin(), p.end());
    } else if (n != count || k != classes || job_labels != labels) {
      consistent = false;  // seeds predicted different test sets
    } else {
      for (size_t i = 0; i < p.size(); ++i) sum[i] += p[i];
    }
    ++members;
  }
  return flush();
}

absl::StatusOr<v1::Predictions> MetricReader::GetPredictions(
    int64_t job_id, uint32_t epoch, const std::string& split_in) {
  MIXCAL_ASSIGN_OR_RETURN(const std::string split, SplitOrTest(split_in));
  RequestLock lock(c_);
  MIXCAL_RETURN_IF_ERROR(ReadJob(c_, job_id).status());
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement s,
      c_.db()->Cached(
          "SELECT epoch, probabilities, labels, file_offset, "
          "file_bytes, file_hash, count, classes FROM "
          "predictions WHERE job_id = ?1 AND split = ?2 AND (?3 = 0 "
          "OR epoch = ?3) ORDER BY epoch DESC LIMIT 1"));
  s->Bind(1, job_id).Bind(2, split).Bind(3, epoch);
  MIXCAL_ASSIGN_OR_RETURN(bool found, s->Step());
  if (!found) {
    MIXCAL_ASSIGN_OR_RETURN(
        CachedStatement e,
        c_.db()->Cached(
            "SELECT group_concat(epoch, ', ') FROM (SELECT epoch FROM "
            "predictions WHERE job_id = ? AND split = ? ORDER BY "
            "epoch)"));
    e->Bind(1, job_id).Bind(2, split);
    MIXCAL_ASSIGN_OR_RETURN(bool any, e->Step());
    const std::string have = any && !e->IsNull(0) ? e->Text(0) : "";
    return absl::NotFoundError(absl::StrCat(
        "job ", job_id, " kept no predictions of split ", split,
        epoch > 0 ? absl::StrCat(" at epoch ", epoch) : "",
        have.empty() ? " (evaluation.predictions keeps them; none yet)"
                     : absl::StrCat(" (epochs kept: ", have, ")")));
  }
  v1::Predictions p;
  p.set_job_id(job_id);
  p.set_epoch(static_cast<uint32_t>(s->Int(0)));
  p.set_split(split);
  p.set_count(static_cast<uint32_t>(s->Int(6)));
  p.set_classes(static_cast<uint32_t>(s->Int(7)));
  MIXCAL_RETURN_IF_ERROR(PredictionBytes(*s, 1, job_id,
                                         p.mutable_probabilities(),
                                         p.mutable_labels(),
                                         p.mutable_label_log_probs()));
  return p;
}

absl::Status MetricReader::PredictionBytes(const Statement& s, int first,
                                           int64_t job_id,
                                           std::string* probabilities,
                                           std::string* labels,
                                           std::string* label_log_probs) {
  const int64_t count = s.Int(first + 5);
  // Labels (4 bytes an example), then log-probabilities when kept (4 more).
  auto split_labels = [&](std::string* both) {
    if (static_cast<int64_t>(both->size()) == 8 * count) {
      if (label_log_probs != nullptr)
        label_log_probs->assign(*both, static_cast<size_t>(4 * count),
                                std::string::npos);
      both->resize(static_cast<size_t>(4 * count));
    }
  };
  if (s.IsNull(first + 2)) {  // kept in the row (":memory:", or schema < 17)
    *probabilities = s.Blob(first);
    *labels = s.Blob(first + 1);
    split_labels(labels);
    return absl::OkStatus();
  }
  const std::string what = absl::StrCat("job ", job_id, "'s kept predictions");
  BlobFile* const blobs = c_.blobs();
  if (blobs == nullptr) {
    return absl::DataLossError(absl::StrCat(
        what, " are in a predictions file this store has none of"));
  }
  const BlobRef ref{s.Int(first + 2), s.Int(first + 3),
                    static_cast<uint64_t>(s.Int(first + 4))};
  const int64_t classes = s.Int(first + 6);
  const int64_t probability_bytes = 2 * count * classes;
  if (ref.bytes != probability_bytes + 4 * count &&
      ref.bytes != probability_bytes + 8 * count) {
    return absl::DataLossError(absl::StrCat(
        what, ": the row names ", ref.bytes, " bytes, ", count, " x ", classes,
        " predictions need ", probability_bytes + 4 * count, " (or ",
        probability_bytes + 8 * count, " with log-probabilities)"));
  }
  MIXCAL_ASSIGN_OR_RETURN(std::string bytes, blobs->Read(ref, what));
  labels->assign(bytes, static_cast<size_t>(probability_bytes),
                 std::string::npos);
  split_labels(labels);
  bytes.resize(static_cast<size_t>(probability_bytes));
  *probabilities = std::move(bytes);
  return absl::OkStatus();
}

}  // namespace mixcal::storage
