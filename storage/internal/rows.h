#ifndef MIXCAL_STORAGE_INTERNAL_ROWS_H_
#define MIXCAL_STORAGE_INTERNAL_ROWS_H_

// Rows of the store's tables <-> mixcal.v1 messages, and the checks on names
// that reach SQL.

#include <string>

#include "absl/status/statusor.h"
#include "mixcal/v1/jobs.pb.h"
#include "mixcal/v1/metrics.pb.h"
#include "storage/internal/sqlite.h"

namespace mixcal::storage {

// The columns JobFromRow reads, in its order: "SELECT " + kJobColumns.
extern const char kJobColumns[];
// A row of jobs selected with kJobColumns. DataLoss naming the job when its
// stored config does not parse.
absl::StatusOr<v1::Job> JobFromRow(const Statement& s);

// Every metric of calib's table is a REAL column of epoch_metrics named as
// the metric (NULL where a row does not carry it): "accuracy, nll, ...".
const std::string& MetricColumnNames();
// The columns MetricsFromRow reads, from epoch_metrics m joined with jobs j:
// "SELECT " + MetricColumns() + " FROM epoch_metrics m JOIN jobs j ...".
const std::string& MetricColumns();
// Without bins (ReadBins adds them).
v1::EpochMetrics MetricsFromRow(const Statement& s);
// Binds each table metric of `m` (NULL when absent) at parameters
// first, first + 1, ... in MetricColumnNames()'s order.
void BindMetricValues(Statement& s, int first, const v1::EpochMetrics& m);
// Reads them from columns first, first + 1, ...
void ReadMetricValues(const Statement& s, int first, v1::EpochMetrics* m);

// A split name: 1-32 of [a-z0-9_-].
bool ValidSplitName(const std::string& s);
// `split` (empty: test), or InvalidArgument when it is not a split name.
absl::StatusOr<std::string> SplitOrTest(const std::string& split);

// "cuda" for cuda and cuda:N, else "cpu": the device class a worker serves.
std::string WorkerDeviceClass(const std::string& device);

}  // namespace mixcal::storage

#endif  // MIXCAL_STORAGE_INTERNAL_ROWS_H_
