#ifndef MIXCAL_WORKER_REPORT_PROTO_H_
#define MIXCAL_WORKER_REPORT_PROTO_H_

// The training core's epoch report as the API's rows: one EpochMetrics per
// split, every metric of calib's table set by its name
// (spec/metric_values.h), with the split's reliability bins.

#include <cstdint>
#include <vector>

#include "mixcal/v1/metrics.pb.h"
#include "worker/core/trainer.h"

namespace mixcal::worker {

std::vector<v1::EpochMetrics> ToProto(const core::EpochReport& report,
                                      int64_t job_id);

}  // namespace mixcal::worker

#endif  // MIXCAL_WORKER_REPORT_PROTO_H_
