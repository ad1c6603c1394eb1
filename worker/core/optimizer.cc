#include "worker/core/optimizer.h"

#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>

#include <cmath>
#include <utility>

namespace mixcal::core {

std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(
    const calib::TrainConfig& c, std::vector<at::Tensor> params) {
  if (c.optimizer == calib::OptimizerKind::kAdam) {
    return std::make_unique<torch::optim::Adam>(
        std::move(params),
        torch::optim::AdamOptions(c.lr).weight_decay(c.weight_decay));
  }
  return std::make_unique<torch::optim::SGD>(std::move(params),
                                             torch::optim::SGDOptions(c.lr)
                                                 .momentum(c.momentum)
                                                 .nesterov(c.nesterov)
                                                 .weight_decay(c.weight_decay));
}

double LearningRateAt(const calib::TrainConfig& c,
                      const std::vector<int>& milestones, int epoch) {
  switch (c.schedule) {
    case calib::Schedule::kConstant:
      return c.lr;
    case calib::Schedule::kStep: {
      double lr = c.lr;
      for (int m : milestones)
        if (epoch > m) lr *= c.lr_gamma;
      return lr;
    }
    case calib::Schedule::kCosine:
      return 0.5 * c.lr * (1 + std::cos(M_PI * (epoch - 1) / c.epochs));
  }
  return c.lr;
}

void SetLearningRate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

}  // namespace mixcal::core
