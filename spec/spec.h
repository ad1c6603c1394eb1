#ifndef MIXCAL_SPEC_SPEC_H_
#define MIXCAL_SPEC_SPEC_H_

// SweepSpec validation and expansion, and the TrainConfig of a job. Protobuf
// messages and the training core's torch-free config only (no gRPC, no
// LibTorch): the store, the coordinator and the worker share it, so a range
// is defined once, in calib/config.cc.

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "mixcal/v1/sweep.pb.h"
#include "calib/config.h"

namespace mixcal::spec {

inline constexpr int kMaxMethods = 16;
inline constexpr int kMaxValuesPerMethod = 64;
inline constexpr int kMaxSeeds = 1000;
inline constexpr int kMaxJobsPerSweep = 10000;
inline constexpr int kMaxNameLength = 128;
inline constexpr int kMaxRequestIdLength = 128;
inline constexpr int kMaxPathLength = 4096;
inline constexpr uint64_t kMaxSeed = uint64_t{1}
                                     << 53;  // exact in JSON numbers

// Checks every field of `spec`. InvalidArgument names the field by its path
// in the spec (e.g. "methods[1].values[0]"), the value and the allowed range.
absl::Status ValidateSweepSpec(const v1::SweepSpec& spec);

// One job of a sweep: its identity (method, value, seed) and configuration.
struct JobSpec {
  std::string method;  // canonical method name
  double value = 0;    // 0 for baseline
  uint64_t seed = 0;
  v1::JobConfig config;
};

// The sweep's jobs in a fixed order: methods in spec order, then their values
// in order, then seeds in order. The spec must be valid.
std::vector<JobSpec> ExpandSweep(const v1::SweepSpec& spec);

// The spec with its defaults filled in (seeds [0], device any, ...), as it is
// stored: two specs that mean the same run compare equal after this.
v1::SweepSpec Normalized(const v1::SweepSpec& spec);

// How ToTrainConfig names an uploaded file in model_file and data_file:
// "sha256:" and its hash. The worker replaces it with its cached copy's
// path.
inline constexpr char kUploadedPrefix[] = "sha256:";

// The training core's configuration of one job; InvalidArgument when a name
// or range is wrong. device is "cpu": the worker sets its own.
absl::StatusOr<calib::TrainConfig> ToTrainConfig(const v1::JobConfig& job);

// The number of epochs the job trains for, as ToTrainConfig reads it (the
// store checks reports against it without building the whole config).
int JobEpochs(const v1::JobConfig& job);

// The settings a job trains with, defaults filled in (batch size 128 where
// the spec left it empty, the step schedule's milestones, ...), as
// (name, value) pairs named like the spec's fields ("training.batch_size"),
// in the order a person reads them: data, model and method, training,
// evaluation. What a job page and `mixcal jobs --job` show.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>>
EffectiveSettings(const v1::JobConfig& job);

}  // namespace mixcal::spec

#endif  // MIXCAL_SPEC_SPEC_H_
