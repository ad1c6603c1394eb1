#ifndef MIXCAL_WORKER_CORE_OPTIMIZER_H_
#define MIXCAL_WORKER_CORE_OPTIMIZER_H_

// The optimiser and learning-rate schedule of a configuration. Internal to
// the training core (includes torch/optim).

#include <torch/optim/optimizer.h>

#include <memory>
#include <vector>

#include "calib/config.h"

namespace mixcal::core {

// SGD (momentum, optional Nesterov, L2 weight decay) or Adam (L2 weight
// decay) over `params`, at config.lr.
std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(
    const calib::TrainConfig& config, std::vector<at::Tensor> params);

// The learning rate of 1-based `epoch` under config's schedule;
// `milestones` as calib::EffectiveMilestones(config).
double LearningRateAt(const calib::TrainConfig& config,
                      const std::vector<int>& milestones, int epoch);

// Sets the learning rate of every parameter group.
void SetLearningRate(torch::optim::Optimizer& optimizer, double lr);

}  // namespace mixcal::core

#endif  // MIXCAL_WORKER_CORE_OPTIMIZER_H_
