#ifndef MIXCAL_CALIB_METRIC_TABLE_H_
#define MIXCAL_CALIB_METRIC_TABLE_H_

// The one table of per-epoch metrics. A metric's name is also its field in
// mixcal.v1.EpochMetrics, its column in the store's epoch_metrics table and
// its key in mixcal-train's JSON lines, so everything that names a metric
// (SummarizeSweep, `mixcal summary|metrics|plot`, the store's best-by query)
// reads this table instead of keeping a list of its own.
//
//   const calib::Metric* m = calib::FindMetric("ece");   // null if unknown
//   absl::StatusOr<const calib::Metric*> m =
//       calib::ParseMetric(flag, "--metric");  // error lists the names

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mixcal::calib {

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
};

// Every metric, in the order tables print them; summarized ones first.
const std::vector<Metric>& Metrics();

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
