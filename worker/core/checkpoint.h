#ifndef MIXCAL_WORKER_CORE_CHECKPOINT_H_
#define MIXCAL_WORKER_CORE_CHECKPOINT_H_

// Checkpoints for exact resume: model, optimizer state (momentum buffers,
// Adam's moments), the last finished epoch and the configuration's
// fingerprint. No RNG state: each epoch's stream is a function of (seed,
// epoch) (train_epoch.h), so an epoch boundary implies it. Internal to the
// training core (includes torch).

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <string>

#include "absl/status/statusor.h"
#include "calib/config.h"
#include "worker/core/network.h"

namespace mixcal::core {

// What a checkpoint must match to be resumed by a configuration: model
// (and its file's name), dataset (and its file's name), input shape,
// classes, method, optimizer, seed, batch size and class subset.
std::string Fingerprint(const calib::TrainConfig& config,
                        const InputShape& shape);

// Loads `path` into `model` and `optimizer` (tensors onto `device`) and
// returns the epoch it was written after. NotFound when there is no file,
// DataLoss when it is not a checkpoint, FailedPrecondition when its
// fingerprint is not `fingerprint` (the message names both).
absl::StatusOr<int> LoadCheckpoint(const std::string& path,
                                   const std::string& fingerprint,
                                   const at::Device& device,
                                   Network& model,
                                   torch::optim::Optimizer& optimizer);

// Writes dir/checkpoint-epoch-NNNNN.pt (the directory created if need be)
// through a .tmp file and a rename, so a crash never leaves half a
// checkpoint under the final name; returns its path. Unavailable when the
// directory or the file cannot be written: the directory is the worker's,
// not the job's, so the job may succeed on another worker.
absl::StatusOr<std::string> SaveCheckpoint(const std::string& dir, int epoch,
                                           const std::string& fingerprint,
                                           Network& model,
                                           torch::optim::Optimizer& optimizer);

}  // namespace mixcal::core

#endif  // MIXCAL_WORKER_CORE_CHECKPOINT_H_
