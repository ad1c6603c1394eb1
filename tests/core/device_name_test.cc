#include "worker/core/device_name.h"

#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "worker/core/trainer.h"

namespace mixcal::core {
namespace {

TEST(CpuModelNameTest, TakesTheFirstModelNameTrimmed) {
  EXPECT_EQ(CpuModelName("processor\t: 0\n"
                         "vendor_id\t: GenuineIntel\n"
                         "model name\t: Intel(R) Xeon(R) CPU @ 2.20GHz  \n"
                         "processor\t: 1\n"
                         "model name\t: something else\n"),
            "Intel(R) Xeon(R) CPU @ 2.20GHz");
}

TEST(CpuModelNameTest, EmptyWithoutOne) {
  EXPECT_EQ(CpuModelName("processor\t: 0\nCPU part\t: 0xd0c\n"), "");
  EXPECT_EQ(CpuModelName(""), "");
}

TEST(DeviceNameTest, TheCpuIsNamedByItsModel) {
  std::ifstream in("/proc/cpuinfo");
  std::ostringstream text;
  text << in.rdbuf();
  const std::string model = CpuModelName(text.str());
  if (model.empty()) {
    EXPECT_EQ(DeviceName("cpu"), "cpu");
  } else {
    EXPECT_EQ(DeviceName("cpu"), model);
    EXPECT_NE(DeviceName("cpu"), "cpu");
  }
}

TEST(DeviceNameTest, AGpuIsNamedOrFallsBackToTheDevice) {
  // Without CUDA (a CPU-only LibTorch, or no GPU) the device string stays.
  if (!CudaAvailable()) {
    EXPECT_EQ(DeviceName("cuda:0"), "cuda:0");
  } else {
    EXPECT_NE(DeviceName("cuda:0"), "");
  }
  EXPECT_EQ(DeviceName("cuda:x"), "cuda:x");
}


// A device that fails mid-run is the worker's problem (Unavailable: the
// job is handed back), not the job's; running out of memory and other
// errors stay the job's. The texts are CUDA's own.
TEST(TorchErrorStatusTest, ADeviceFailureIsTheWorkersAndTheRestTheJobs) {
  for (const char* device_gone :
       {"CUDA error: unspecified launch failure\nCUDA kernel errors might be "
        "asynchronously reported",
        "CUDA error: uncorrectable ECC error encountered",
        "CUDA error: no CUDA-capable device is detected",
        "CUDA error: CUDA-capable device(s) is/are busy or unavailable",
        "Found no NVIDIA driver on your system."}) {
    const absl::Status s = TorchErrorStatus(device_gone);
    EXPECT_TRUE(absl::IsUnavailable(s)) << device_gone << ": " << s;
    EXPECT_NE(s.message().find(device_gone), std::string::npos) << s;
  }
  EXPECT_TRUE(absl::IsResourceExhausted(TorchErrorStatus(
      "CUDA out of memory. Tried to allocate 2.00 GiB")));
  EXPECT_TRUE(absl::IsInternal(TorchErrorStatus(
      "mat1 and mat2 shapes cannot be multiplied (64x100 and 784x10)")));
  EXPECT_TRUE(absl::IsInternal(TorchErrorStatus(
      "CUDA error: device-side assert triggered")));  // the job's labels
}

}  // namespace
}  // namespace mixcal::core
