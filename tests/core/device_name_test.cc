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

}  // namespace
}  // namespace mixcal::core
