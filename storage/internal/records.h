#ifndef MIXCAL_STORAGE_INTERNAL_RECORDS_H_
#define MIXCAL_STORAGE_INTERNAL_RECORDS_H_

// Rows more than one component reads or writes: a job, a sweep with its
// counts, the event log, a sweep's state after its jobs changed. Each needs
// the connection's lock held (internal/connection.h).

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "mixcal/v1/jobs.pb.h"
#include "mixcal/v1/sweep.pb.h"
#include "storage/internal/connection.h"

namespace mixcal::storage {

// NotFound for an unknown id; DataLoss naming it when its row is damaged.
absl::StatusOr<v1::Job> ReadJob(Connection& c, int64_t job_id);
absl::StatusOr<v1::Sweep> ReadSweep(Connection& c, int64_t sweep_id);

absl::Status AddEvent(Connection& c, int64_t sweep_id, int64_t job_id,
                      const std::string& kind, const std::string& message);

// The sweep's state from its jobs' (active while any is queued or running;
// then cancelled, failed or succeeded), with an event when it changes.
absl::Status UpdateSweepState(Connection& c, int64_t sweep_id);

}  // namespace mixcal::storage

#endif  // MIXCAL_STORAGE_INTERNAL_RECORDS_H_
