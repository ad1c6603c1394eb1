#ifndef MIXCAL_WORKER_CORE_MODELS_H_
#define MIXCAL_WORKER_CORE_MODELS_H_

// The classifiers. Internal to the training core (includes torch/nn).

#include <torch/nn/module.h>

#include <memory>

#include "absl/status/statusor.h"
#include "calib/config.h"

namespace mixcal::core {

// A module mapping [B, C, H, W] float inputs to [B, classes] logits, as a
// sequence of stages (the points between them are where Manifold Mixup may
// mix hidden states).
class ClassifierImpl : public torch::nn::Module {
 public:
  // How many stages; stage(stages() - 1) returns the logits.
  virtual int stages() const = 0;
  virtual at::Tensor stage(int i, at::Tensor x) = 0;

  at::Tensor forward(at::Tensor x) {
    for (int i = 0; i < stages(); ++i) x = stage(i, std::move(x));
    return x;
  }
  // Manifold Mixup (Verma et al. 2019): the batch run up to block `k`
  // (0 = the inputs, k = the output of stage k-1), there replaced by
  // lambda * h + (1 - lambda) * h[perm], then run to the logits. k in
  // [0, stages() - 1].
  at::Tensor forward_mixed(at::Tensor x, int k, const at::Tensor& perm,
                           double lambda) {
    for (int i = 0; i < stages(); ++i) {
      if (i == k) x = lambda * x + (1.0 - lambda) * x.index_select(0, perm);
      x = stage(i, std::move(x));
    }
    return x;
  }
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
