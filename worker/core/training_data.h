#ifndef MIXCAL_WORKER_CORE_TRAINING_DATA_H_
#define MIXCAL_WORKER_CORE_TRAINING_DATA_H_

// The tensors of one run, prepared once from its configuration: the training
// set and every evaluation split, on the training device. Internal to the
// training core (includes ATen).

#include <ATen/ATen.h>

#include <cstdint>

#include "absl/status/statusor.h"
#include "calib/config.h"
#include "worker/core/data.h"
#include "worker/core/input_shape.h"

namespace mixcal::core {

// The inputs of the evaluation splits. Images are raw (uint8 or float, as
// loaded) on the training device unless noted; labels stay on the CPU. An
// undefined tensor means the split is not evaluated.
struct EvalSets {
  at::Tensor test_x, test_y;
  at::Tensor val_x, val_y;  // may hold no rows
  at::Tensor train_eval_x, train_eval_y;
  at::Tensor noise_x;  // already normalised: N(0, 1) is the training mean/std
  at::Tensor ood_x;
};

struct TrainingData {
  InputShape shape;
  at::Tensor train_x, train_y;  // on the device
  Normalizer normalize;         // fitted on the training split
  bool augment = false;         // random crop and flip of training batches
  EvalSets eval;
};

// Loads config's dataset (and its OOD dataset), keeps its class subset,
// applies label noise, splits off the validation set, limits the test set
// and draws the noise inputs, each from its own stream of config.seed (the
// global LibTorch generator is not used). NotFound/DataLoss from the
// readers; InvalidArgument when the OOD inputs' shape differs.
absl::StatusOr<TrainingData> PrepareTrainingData(
    const calib::TrainConfig& config, const at::Device& device);

}  // namespace mixcal::core

#endif  // MIXCAL_WORKER_CORE_TRAINING_DATA_H_
