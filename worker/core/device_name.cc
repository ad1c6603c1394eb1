#include "worker/core/device_name.h"

#include <dlfcn.h>

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "worker/core/trainer.h"

namespace mixcal::core {
namespace {

// The GPU's name from the CUDA driver (libcuda, loaded at run time), so that
// this builds and runs without CUDA, and with a CPU-only LibTorch. Empty when
// the driver is absent or does not know the device. The driver numbers
// devices as CUDA_VISIBLE_DEVICES shows them, as LibTorch does.
std::string CudaDeviceName(int index) {
  using CuInit = int (*)(unsigned int);
  using CuDeviceGet = int (*)(int*, int);
  using CuDeviceGetName = int (*)(char*, int, int);
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) return "";
  std::string name;
  auto init = reinterpret_cast<CuInit>(dlsym(lib, "cuInit"));
  auto get = reinterpret_cast<CuDeviceGet>(dlsym(lib, "cuDeviceGet"));
  auto get_name =
      reinterpret_cast<CuDeviceGetName>(dlsym(lib, "cuDeviceGetName"));
  int device = 0;
  char buffer[256] = {0};
  // 0 is CUDA_SUCCESS.
  if (init != nullptr && get != nullptr && get_name != nullptr &&
      init(0) == 0 && get(&device, index) == 0 &&
      get_name(buffer, sizeof buffer - 1, device) == 0) {
    name = buffer;
  }
  // Left loaded: LibTorch may use the same driver.
  return name;
}

std::string ReadCpuInfo() {
  std::ifstream in("/proc/cpuinfo");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::string CpuModelName(absl::string_view cpuinfo) {
  for (absl::string_view line : absl::StrSplit(cpuinfo, '\n')) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(line, absl::MaxSplits(':', 1));
    if (absl::StripAsciiWhitespace(kv.first) == "model name") {
      return std::string(absl::StripAsciiWhitespace(kv.second));
    }
  }
  return "";
}

std::string DeviceName(const std::string& device) {
  std::string name;
  if (device == "cpu") {
    name = CpuModelName(ReadCpuInfo());
  } else if (absl::StartsWith(device, "cuda")) {
    int index = 0;
    const absl::string_view rest = absl::string_view(device).substr(4);
    const bool valid = rest.empty() ||
                       (rest[0] == ':' &&
                        absl::SimpleAtoi(rest.substr(1), &index) && index >= 0);
    if (valid && CudaAvailable()) name = CudaDeviceName(index);
  }
  return name.empty() ? device : name;
}

absl::Status TorchErrorStatus(absl::string_view what) {
  if (absl::StrContains(what, "out of memory")) {
    return absl::ResourceExhaustedError(absl::StrCat("out of memory: ", what));
  }
  // CUDA runtime and driver texts that say the device, not the job, failed.
  static constexpr absl::string_view kDeviceFailures[] = {
      "no CUDA-capable device is detected",
      "CUDA-capable device(s) is/are busy or unavailable",
      "CUDA driver version is insufficient",
      "Found no NVIDIA driver",
      "uncorrectable ECC error",
      "GPU is lost",
      "fallen off the bus",
      "unspecified launch failure",
      "CUDA error: initialization error",
      "CUDA error: system not yet initialized",
      "CUDA error: operation not permitted when stream is capturing",
  };
  for (absl::string_view failure : kDeviceFailures) {
    if (absl::StrContains(what, failure)) {
      return absl::UnavailableError(
          absl::StrCat("the device failed: ", what));
    }
  }
  return absl::InternalError(absl::StrCat("LibTorch error: ", what));
}

}  // namespace mixcal::core
