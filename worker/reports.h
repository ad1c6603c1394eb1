#ifndef MIXCAL_WORKER_REPORTS_H_
#define MIXCAL_WORKER_REPORTS_H_

// The training core's reports as the messages the worker streams to the
// coordinator (WorkerService.StreamReports), each under the job's lease.
// The sequence number is left for the sender to set.

#include <string>

#include "mixcal/v1/worker.pb.h"
#include "worker/core/trainer.h"

namespace mixcal::worker {

// One epoch: a metrics row per split, and the kept predictions.
v1::WorkerReport EpochReport(const core::EpochReport& report,
                             const v1::Lease& lease);

// A checkpoint written for `epoch`, named relative to the checkpoint
// directory.
v1::WorkerReport CheckpointReport(int epoch, const std::string& relative_path,
                                  const v1::Lease& lease);

}  // namespace mixcal::worker

#endif  // MIXCAL_WORKER_REPORTS_H_
