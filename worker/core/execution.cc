#include "worker/core/execution.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

namespace mixcal::core {

CudaAutocast::CudaAutocast(bool on) : on_(on) {
  if (!on_) return;
#if TORCH_VERSION_MAJOR > 2 || \
    (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
  at::autocast::set_autocast_enabled(at::kCUDA, true);
#else
  at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
  at::autocast::set_enabled(true);
#endif
}

CudaAutocast::~CudaAutocast() {
  if (!on_) return;
#if TORCH_VERSION_MAJOR > 2 || \
    (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  at::autocast::set_autocast_enabled(at::kCUDA, false);
#else
  at::autocast::set_enabled(false);
#endif
  at::autocast::clear_cache();
}

// Convolutions run in channels-last (NHWC) layout: oneDNN on the CPU and
// cuDNN on the GPU then skip a layout reorder per layer (docs/benchmarks.md).
// The strides are set explicitly: for one-channel tensors NCHW already counts
// as channels-last-contiguous, so contiguous(ChannelsLast) would keep NCHW
// strides and LibTorch would pick the NCHW kernels.
at::Tensor ToModelLayout(const at::Tensor& batch, bool channels_last) {
  if (!channels_last) return batch;
  return at::empty_like(batch, at::MemoryFormat::ChannelsLast).copy_(batch);
}

void ConvertToChannelsLast(torch::nn::Module& model) {
  torch::NoGradGuard ng;
  for (at::Tensor& p : model.parameters())
    if (p.dim() == 4)
      p.set_data(at::empty_like(p, at::MemoryFormat::ChannelsLast).copy_(p));
}

}  // namespace mixcal::core
