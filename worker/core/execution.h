#ifndef MIXCAL_WORKER_CORE_EXECUTION_H_
#define MIXCAL_WORKER_CORE_EXECUTION_H_

// How the core runs its models on a device: bf16 autocast on CUDA and the
// channels-last layout of convolutional models. Internal to the training core
// (includes ATen and torch/nn).

#include <ATen/ATen.h>
#include <torch/nn/module.h>

namespace mixcal::core {

// Where and how a run's model runs; fixed for the whole run.
struct Execution {
  at::Device device = at::kCPU;
  bool cuda = false;           // autocast, CUDA seeding and synchronisation
  bool channels_last = false;  // the model's layout (ToModelLayout)
};

// bf16 autocast on CUDA for the forward passes in its scope; nothing when
// `on` is false. The loss is computed in float32 after the scope.
class CudaAutocast {
 public:
  explicit CudaAutocast(bool on);
  ~CudaAutocast();
  CudaAutocast(const CudaAutocast&) = delete;
  CudaAutocast& operator=(const CudaAutocast&) = delete;

 private:
  bool on_;
};

// `batch` in the layout the model's parameters have: channels-last (NHWC)
// strides when `channels_last`, else unchanged.
at::Tensor ToModelLayout(const at::Tensor& batch, bool channels_last);

// Converts the model's 4-d parameters (the convolutions') to channels-last.
void ConvertToChannelsLast(torch::nn::Module& model);

}  // namespace mixcal::core

#endif  // MIXCAL_WORKER_CORE_EXECUTION_H_
