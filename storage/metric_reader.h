#ifndef MIXCAL_STORAGE_METRIC_READER_H_
#define MIXCAL_STORAGE_METRIC_READER_H_

// Reading what the report log stored: per-epoch metrics (paged), the
// summary over seeds with paired comparisons and seed ensembles, reliability
// bins, kept predictions and the event log. Reads only; the metric columns
// come from calib's metric table.
//
// Thread-safe. Errors: InvalidArgument (a bad filter or reference, naming
// the field), NotFound (no such sweep, job, epoch or split), DataLoss (a
// damaged row or predictions file, naming the job).

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "mixcal/v1/jobs.pb.h"
#include "mixcal/v1/metrics.pb.h"

namespace mixcal::storage {

class Connection;
class Statement;

class MetricReader {
 public:
  explicit MetricReader(Connection& c) : c_(c) {}
  MetricReader(const MetricReader&) = delete;
  MetricReader& operator=(const MetricReader&) = delete;

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
  absl::StatusOr<v1::Predictions> GetPredictions(int64_t job_id, uint32_t epoch,
                                                 const std::string& split);
  // epoch 0 = the job's newest; the bins with ECE, MCE and OE re-derived.
  absl::StatusOr<v1::EpochMetrics> GetReliability(int64_t job_id,
                                                  uint32_t epoch,
                                                  const std::string& split);
  absl::StatusOr<std::vector<v1::Event>> ListEvents(int64_t sweep_id,
                                                    int64_t job_id,
                                                    int64_t after_id,
                                                    int limit);

 private:
  // SummarizeSweep's ensemble rows, from `chosen` (SQL of (job_id, epoch)
  // with ?1 the sweep).
  absl::Status AppendEnsembles(
      const std::string& chosen, int64_t sweep_id, int bins,
      const std::optional<std::pair<std::string, double>>& ref,
      std::vector<v1::SummaryRow>* out);
  absl::Status ReadBins(v1::EpochMetrics* m);
  // A predictions row's probabilities and labels, from columns `first`..
  // (probabilities, labels, file_offset, file_bytes, file_hash, count,
  // classes): in the row, or in the predictions file it points into. The
  // labels may be followed by each label's float32 log-probability (kept
  // since they were sent): into `label_log_probs` when given, else dropped.
  absl::Status PredictionBytes(const Statement& s, int first, int64_t job_id,
                               std::string* probabilities, std::string* labels,
                               std::string* label_log_probs = nullptr);

  Connection& c_;
};

}  // namespace mixcal::storage

#endif  // MIXCAL_STORAGE_METRIC_READER_H_
