#ifndef MIXCAL_WORKER_CORE_TRAINING_METHOD_H_
#define MIXCAL_WORKER_CORE_TRAINING_METHOD_H_

// The training methods as strategies the epoch loop calls: one class per
// method (baseline, mixup, feature_mixup, label_smoothing, erl, focal,
// cutmix, regmixup, mmce, manifold_mixup) decides what a batch draws from
// the epoch's stream, which forward pass it takes, its loss (methods.h) and
// what it counts towards the training accuracy. The loop itself knows no
// method. Internal to the training core (includes ATen and torch/nn).
//
//   std::unique_ptr<TrainingMethod> method = MakeTrainingMethod(config);
//   if (absl::Status s = method->CheckModel(*net, shape); !s.ok()) ...
//   StepResult r = method->Step(*net, {x, y}, ctx);
//   r.loss.backward();

#include <ATen/ATen.h>

#include <memory>
#include <random>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "calib/config.h"
#include "worker/core/network.h"

namespace mixcal::core {

// One training batch, ready for the model: augmented, normalised and in the
// model's layout, on the training device.
struct TrainBatch {
  at::Tensor x;  // [B, C, H, W] float, or [B, L] int64 token ids
  at::Tensor y;  // [B] int64 labels
};

// What a step draws from and runs on; owned by the epoch loop.
struct StepContext {
  // The epoch's stream of mixing coefficients, CutMix boxes and Manifold
  // Mixup blocks; seeded by (seed, epoch), so a resumed run draws what an
  // uninterrupted one would have. Permutations come from LibTorch's default
  // generator of `device`, seeded the same way.
  std::mt19937_64* mix_rng = nullptr;
  at::Device device = at::kCPU;
  bool autocast = false;  // bf16 autocast for the forward pass (CUDA)
};

struct StepResult {
  at::Tensor loss;     // scalar float32 with its graph: what backward runs on
  at::Tensor correct;  // scalar float64, no graph: the batch's correct count
                       // (mixup: lambda*acc(y) + (1-lambda)*acc(y[pi]), as
                       // a count), summed into train_accuracy
};

class TrainingMethod {
 public:
  virtual ~TrainingMethod() = default;

  // OK when the method can train `model` on inputs `shape`, else
  // InvalidArgument saying what is missing (the config field, or the
  // module method of docs/own-model.md). Called once, at the start of a
  // run, before any training. Every model of models.h on images satisfies
  // the defaults' checks; Manifold Mixup needs its blocks among the model's
  // mixable blocks; methods that mix inputs need embed/forward_embedded on
  // token ids; CutMix needs images.
  virtual absl::Status CheckModel(const Network& model,
                                  const InputShape& shape) const;

  // One batch: the method's draws (in a fixed order and count per batch, so
  // resuming is exact), the forward pass with the model in training mode,
  // the loss and the correct count. Neither runs backward nor steps an
  // optimizer. Throws what LibTorch throws.
  virtual StepResult Step(Network& model, const TrainBatch& batch,
                          StepContext& ctx) = 0;
};

// The strategy of config.method with its hyperparameters from `config`
// (validated by calib::Validate beforehand).
std::unique_ptr<TrainingMethod> MakeTrainingMethod(
    const calib::TrainConfig& config);

}  // namespace mixcal::core

#endif  // MIXCAL_WORKER_CORE_TRAINING_METHOD_H_
