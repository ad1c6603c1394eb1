#ifndef MIXCAL_STORAGE_INTERNAL_REPORT_CHECKS_H_
#define MIXCAL_STORAGE_INTERNAL_REPORT_CHECKS_H_

// A worker's report checked on its own, before any lease or row is looked
// at: ranges of every metric (from calib's metric table), bins that add up
// to the split's count, kept predictions' sizes and labels, a checkpoint
// path inside the checkpoint directory, a finish's outcome.

#include "absl/status/status.h"
#include "mixcal/v1/worker.pb.h"

namespace mixcal::storage {

// InvalidArgument naming the field and its allowed range.
absl::Status CheckReport(const v1::WorkerReport& report);

}  // namespace mixcal::storage

#endif  // MIXCAL_STORAGE_INTERNAL_REPORT_CHECKS_H_
