#ifndef MIXCAL_WORKER_CORE_EVALUATION_PASS_H_
#define MIXCAL_WORKER_CORE_EVALUATION_PASS_H_

// The evaluation after each epoch: the model's logits on every split and
// the report's splits from them (evaluate.h's metrics, temperature scaling
// and the post-hoc calibrators). Internal to the training core (includes
// ATen and torch/nn).

#include "calib/config.h"
#include "worker/core/data.h"
#include "worker/core/execution.h"
#include "worker/core/network.h"
#include "worker/core/trainer.h"
#include "worker/core/training_data.h"

namespace mixcal::core {

// Evaluates `model` (in eval mode, under InferenceMode) on `sets` and
// appends to report->splits, in this order: test, test_ts (when
// config.temperature_scaling), one split per config.calibrators (both need
// validation rows), train, noise, ood (each when its set is defined); keeps
// the test probabilities when calib::KeepsPredictions(config, epoch); sets
// eval_samples, eval_seconds and metrics_seconds. Every split then carries
// report's training metrics (train_loss, train_accuracy, lr,
// samples_per_sec), which must be set before. Throws what LibTorch throws.
void EvaluateEpoch(const calib::TrainConfig& config, int epoch,
                   const Execution& exec, const Normalizer& normalize,
                   const EvalSets& sets, Network& model,
                   EpochReport* report);

}  // namespace mixcal::core

#endif  // MIXCAL_WORKER_CORE_EVALUATION_PASS_H_
