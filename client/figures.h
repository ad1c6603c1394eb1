#ifndef MIXCAL_CLIENT_FIGURES_H_
#define MIXCAL_CLIENT_FIGURES_H_

// The figures of `mixcal plot` and of the dashboard, one code path for both:
// each reads what it needs from the coordinator through a Session and draws
// it with client/plot.h. Arguments are validated by the caller (the CLI's
// flags, the dashboard's query parameters); what can fail here is the
// coordinator (its gRPC status, code and message kept) or missing data
// (NotFound / FailedPrecondition with a message for the user).

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "calib/metric_table.h"
#include "client/session.h"

namespace mixcal::client {

struct Figure {
  std::string svg;
  std::string name;  // a descriptive file name, e.g. "curves-sweep3-ece.svg"
};

// The grpc::Status of a failed call as an absl::Status (codes map 1:1).
absl::Status FromGrpc(const grpc::Status& s);

// Reliability diagram of one job's epoch (0 = newest) and split.
absl::StatusOr<Figure> ReliabilityFigure(Session& s, int64_t job,
                                         uint32_t epoch,
                                         const std::string& split);

// A metric against epoch: for a sweep, a line per (method, value), mean over
// seeds with a ±std band; for one job (job > 0), a line per split.
absl::StatusOr<Figure> CurvesFigure(Session& s, int64_t sweep, int64_t job,
                                    const calib::Metric& metric,
                                    const std::string& split);

// A metric against epoch for chosen jobs, a line each ("job 3: mixup 0.4,
// seed 1"), coloured by method: runs compared side by side.
absl::StatusOr<Figure> JobsCurvesFigure(Session& s,
                                        const std::vector<int64_t>& jobs,
                                        const calib::Metric& metric,
                                        const std::string& split);

// Reliability curves of chosen jobs on one axes: each job's accuracy against
// mean confidence per non-empty bin at its newest epoch (or `epoch`), a line
// each coloured by method, the diagonal dashed; the legend gives each job's
// ECE.
absl::StatusOr<Figure> JobsReliabilityFigure(Session& s,
                                             const std::vector<int64_t>& jobs,
                                             uint32_t epoch,
                                             const std::string& split);

// The final metric against the hyperparameter, per method (mean ± std,
// baseline dashed), or with `vs` the paired difference to that
// configuration with 95% intervals. `param` "" = every method with values.
absl::StatusOr<Figure> SweepFigure(Session& s, int64_t sweep,
                                   const calib::Metric& metric,
                                   const std::string& param,
                                   const std::string& split,
                                   const std::string& vs);

// The bins of `split` at `epochs` (empty: four spread over each job's
// epochs), a row per job.
absl::StatusOr<Figure> EvolutionFigure(Session& s,
                                       const std::vector<int64_t>& jobs,
                                       const std::vector<uint32_t>& epochs,
                                       const std::string& split);

}  // namespace mixcal::client

#endif  // MIXCAL_CLIENT_FIGURES_H_
