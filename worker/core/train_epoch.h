#ifndef MIXCAL_WORKER_CORE_TRAIN_EPOCH_H_
#define MIXCAL_WORKER_CORE_TRAIN_EPOCH_H_

// One epoch of training: the batch loop that every method and every model
// goes through, the method's strategy (training_method.h) deciding what a
// batch does. Internal to the training core (includes torch).

#include <torch/optim/optimizer.h>

#include "absl/status/status.h"
#include "calib/config.h"
#include "worker/core/execution.h"
#include "worker/core/trainer.h"
#include "worker/core/training_data.h"
#include "worker/core/training_method.h"

namespace mixcal::core {

// Trains `model` for 1-based `epoch` over data.train_x in batches of
// config.batch_size and sets report->train_loss, train_accuracy,
// train_seconds and samples_per_sec. Every random draw of the epoch (the
// shuffle, augmentation, the method's lambdas and permutations) comes from
// streams seeded by (config.seed, epoch), which is what makes resuming from
// a checkpoint at an epoch boundary exact. Cancelled when hooks.cancel is
// set before a batch or after the last one; Internal when the loss is not
// finite (checked every 50 batches and for the epoch's mean).
absl::Status TrainEpoch(const calib::TrainConfig& config, int epoch,
                        const Execution& setup, const TrainingData& data,
                        TrainingMethod& method, Network& model,
                        torch::optim::Optimizer& optimizer,
                        const TrainHooks& hooks, EpochReport* report);

}  // namespace mixcal::core

#endif  // MIXCAL_WORKER_CORE_TRAIN_EPOCH_H_
