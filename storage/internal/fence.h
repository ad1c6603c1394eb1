#ifndef MIXCAL_STORAGE_INTERNAL_FENCE_H_
#define MIXCAL_STORAGE_INTERNAL_FENCE_H_

// The one check of a lease, for heartbeats (JobQueue) and for every report
// (ReportLog): a worker that lost its lease may still be running and must
// not overwrite the new attempt's epochs, nor end it.

#include <cstdint>

#include "absl/status/status.h"
#include "mixcal/v1/jobs.pb.h"
#include "storage/internal/connection.h"

namespace mixcal::storage {

// OK when the job is RUNNING on exactly lease.attempt() with its token.
// NotFound: no such job. PermissionDenied: the attempt is current but the
// token is not the one it was given with. FailedPrecondition: another
// attempt is current, or the job is no longer running. `state`, when given,
// gets the job's state whenever the lease's attempt is the current one
// (CANCELLED tells a worker that a person cancelled its job). With
// `worker_id`, the job must also be leased to that worker. The
// connection's lock must be held.
absl::Status CheckLease(Connection& c, const v1::Lease& lease,
                        v1::JobState* state = nullptr, int64_t worker_id = 0);

}  // namespace mixcal::storage

#endif  // MIXCAL_STORAGE_INTERNAL_FENCE_H_
