#ifndef MIXCAL_WORKER_CORE_MODELS_H_
#define MIXCAL_WORKER_CORE_MODELS_H_

// The classifiers. Internal to the training core (includes torch/nn).

#include <torch/nn/module.h>

#include <memory>

#include "absl/status/statusor.h"
#include "calib/config.h"

namespace mixcal::core {

// A module mapping [B, C, H, W] float inputs to [B, classes] logits.
class ClassifierImpl : public torch::nn::Module {
 public:
  virtual at::Tensor forward(at::Tensor x) = 0;
};

// Builds `kind` for inputs of `channels` x `height` x `width` and `classes`
// outputs:
//   mlp      flatten, 512, 256, classes (ReLU)
//   lenet    conv5(6), pool, conv5(16), pool, 120, 84, classes (ReLU; inputs
//            under 32 pixels are zero-padded by 2 in the first conv)
//   resnet18 CIFAR stem (3x3 conv, no max-pool), BasicBlocks [2,2,2,2]
//   vgg16    VGG-16 with batch norm, CIFAR-style single linear classifier;
//            pools that would shrink a side below 1 are left out
// InvalidArgument when the input is too small for the model.
absl::StatusOr<std::shared_ptr<ClassifierImpl>> MakeModel(calib::ModelKind kind,
                                                          int channels,
                                                          int height, int width,
                                                          int classes);

}  // namespace mixcal::core

#endif  // MIXCAL_WORKER_CORE_MODELS_H_
