#ifndef MIXCAL_SPEC_METRIC_VALUES_H_
#define MIXCAL_SPEC_METRIC_VALUES_H_

// A metric of the one table (calib/metric_table.h) in a v1.EpochMetrics
// row: the table's name is the row's field, or, for a metric with no field
// of its own, its key in more_metrics.

#include <optional>

#include "calib/metric_table.h"
#include "mixcal/v1/metrics.pb.h"

namespace mixcal::spec {

// The metric's value in `row`; nullopt for an optional metric the row does
// not carry (temperature off test_ts, auroc off noise/ood).
std::optional<double> MetricValue(const v1::EpochMetrics& row,
                                  const calib::Metric& metric);

// Whether the metric has a field of its own in EpochMetrics (else it goes
// in more_metrics).
bool HasField(const calib::Metric& metric);

// Sets the metric's value in `row`; nullopt clears an optional one (a
// field without presence reads 0).
void SetMetricValue(v1::EpochMetrics* row, const calib::Metric& metric,
                    std::optional<double> value);

// The metrics of the table the row carries, by the table's names,
// into `values` (the training core's form back, for tests and tools).
calib::MetricValues MetricValuesOf(const v1::EpochMetrics& row);

}  // namespace mixcal::spec

#endif  // MIXCAL_SPEC_METRIC_VALUES_H_
