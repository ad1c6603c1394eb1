#ifndef MIXCAL_SPEC_METRIC_VALUES_H_
#define MIXCAL_SPEC_METRIC_VALUES_H_

// Reading a metric of the one table (calib/metric_table.h) from a stored
// report row: the table's name is the v1.EpochMetrics field.

#include <optional>

#include "calib/metric_table.h"
#include "mixcal/v1/metrics.pb.h"

namespace mixcal::spec {

// The metric's value in `row`; nullopt for an optional metric the row does
// not carry (temperature off test_ts, auroc off noise/ood).
std::optional<double> MetricValue(const v1::EpochMetrics& row,
                                  const calib::Metric& metric);

}  // namespace mixcal::spec

#endif  // MIXCAL_SPEC_METRIC_VALUES_H_
