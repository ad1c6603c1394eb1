#ifndef MIXCAL_WORKER_CORE_DEVICE_NAME_H_
#define MIXCAL_WORKER_CORE_DEVICE_NAME_H_

// What a device is, as `mixcal workers` shows it. Torch-free header.

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace mixcal::core {

// The model of `device` (cpu | cuda | cuda:N): for cuda, the GPU's name
// ("NVIDIA H100 80GB HBM3") when this LibTorch can use CUDA and the driver
// names it; for cpu, /proc/cpuinfo's "model name". Falls back to `device`
// itself. Never fails.
std::string DeviceName(const std::string& device);

// The first "model name" in /proc/cpuinfo's text; empty when there is none
// (some ARM kernels leave it out).
std::string CpuModelName(absl::string_view cpuinfo);

// What a LibTorch error's text means for the job: out of memory is
// ResourceExhausted (the job's own: it asked for too much); the device
// itself failing or gone (no CUDA device or driver, an uncorrectable ECC
// error, a GPU fallen off the bus, an unspecified launch failure) is
// Unavailable: the worker's own environment, so the job is handed back and
// the worker leaves rotation; anything else is Internal (the job's).
absl::Status TorchErrorStatus(absl::string_view what);

}  // namespace mixcal::core

#endif  // MIXCAL_WORKER_CORE_DEVICE_NAME_H_
