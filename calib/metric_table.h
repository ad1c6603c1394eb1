#ifndef MIXCAL_CALIB_METRIC_TABLE_H_
#define MIXCAL_CALIB_METRIC_TABLE_H_

// The one table of per-epoch metrics. A metric's name is also its field in
// mixcal.v1.EpochMetrics (or its key in EpochMetrics.more_metrics, for a
// metric with no field of its own), its column in the store's
// epoch_metrics table (added when the store opens) and its key in
// mixcal-train's JSON lines. Every layer reads this table instead of
// keeping a list of its own: the training core's MetricValues, the worker's
// conversion to EpochMetrics, the store's checks, binds and reads, the
// summary over seeds, `mixcal summary|metrics|plot` and the dashboard.
//
//   const calib::Metric* m = calib::FindMetric("ece");   // null if unknown
//   absl::StatusOr<const calib::Metric*> m =
//       calib::ParseMetric(flag, "--metric");  // error lists the names
//   MetricValues v;  v.Set("ece", 0.03);  v.Get("ece");  // 0.03

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace mixcal::calib {

// What a metric computed from a labelled split's predictions sees
// (Metric::compute). Spans stay valid only during the call.
struct SplitExamples {
  absl::Span<const float> confidence;     // top-label probability, per example
  absl::Span<const uint8_t> correct;      // 1 where the top label is right
  absl::Span<const float> probabilities;  // examples x classes, row-major
  absl::Span<const int32_t> labels;
  int classes = 0;
};

struct Metric {
  const char* name;
  // Whether a larger value is better (best-by picks the maximum).
  bool higher_is_better;
  // Whether SummarizeSweep reports its mean and std over seeds.
  bool summarized;
  // Present only on some rows (temperature on test_ts, auroc on noise/ood);
  // absent elsewhere rather than 0.
  bool optional;
  // One line for help texts.
  const char* meaning;
  // The values a report may carry: finite and in [min, max] (the store
  // refuses others, naming the field).
  double min;
  double max;
  // For a metric that is a function of a labelled split's predictions: the
  // training core computes it on every labelled split with this (the
  // metrics above it in the table share intermediate work and are computed
  // by the core's own code). Its value must lie in [min, max].
  std::function<double(const SplitExamples&)> compute = nullptr;
};

// Every metric, in the order tables print them; summarized ones first.
const std::vector<Metric>& Metrics();

// Adds `metric` to the table (after the summarized ones if it is
// summarized, else at the end). Only at start-up, before any other call
// of this library or of a layer that reads the table (pointers into the
// table are kept): a test, or a lab's own build, adding a metric with its
// `compute`. InvalidArgument for an empty or taken name, a name that is
// not [a-z0-9_] (it becomes a column), or min > max.
absl::Status RegisterMetric(Metric metric);

// One split's values of the table's metrics; absent until set.
class MetricValues {
 public:
  // `name` must be in the table: a name that is not is a programming error
  // (the process stops, naming it).
  void Set(absl::string_view name, double value);
  void Set(const Metric& metric, double value);
  std::optional<double> Get(absl::string_view name) const;
  std::optional<double> Get(const Metric& metric) const;

 private:
  std::vector<std::optional<double>> values_;  // by position in Metrics()
};

// The metric called exactly `name`, or null.
const Metric* FindMetric(absl::string_view name);

// As FindMetric, or InvalidArgument naming `field`, the value and the known
// names. With summarized_only, only metrics SummarizeSweep reports count.
absl::StatusOr<const Metric*> ParseMetric(absl::string_view name,
                                          absl::string_view field,
                                          bool summarized_only = false);

// The names joined with '|', for help texts and error messages.
std::string MetricNames(bool summarized_only = false);

}  // namespace mixcal::calib

#endif  // MIXCAL_CALIB_METRIC_TABLE_H_
