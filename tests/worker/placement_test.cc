#include "worker/placement.h"

#include <map>
#include <string>

#include "gtest/gtest.h"

namespace mixcal::worker {
namespace {

Placement PlaceWith(const std::string& device, bool cuda,
                    const std::map<std::string, std::string>& env) {
  return Place(device, cuda, [&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

TEST(PlacementTest, AutoTakesTheScheduledGpuOnCudaElseCpu) {
  // A Slurm array task given GPU 1 (as slurm-local.md saw it).
  const std::map<std::string, std::string> slurm = {
      {"SLURM_JOB_ID", "44"},          {"SLURM_ARRAY_JOB_ID", "41"},
      {"SLURM_ARRAY_TASK_ID", "3"},    {"CUDA_VISIBLE_DEVICES", "1"},
      {"SLURM_JOB_GPUS", "1"}};
  Placement p = PlaceWith("auto", true, slurm);
  EXPECT_EQ(p.device, "cuda:0");  // CUDA numbers the visible GPU 0
  EXPECT_EQ(p.where, "slurm job 41_3, gpu 1");
  p = PlaceWith("auto", false, slurm);
  EXPECT_EQ(p.device, "cpu");
  EXPECT_EQ(p.where,
            "slurm job 41_3, gpu 1 (not used: no CUDA here, running on cpu)");
}

TEST(PlacementTest, SlurmGpusWithoutCudaVisibleDevicesAndPlainJobs) {
  Placement p = PlaceWith("auto", true, {{"SLURM_JOB_ID", "7"},
                                         {"SLURM_JOB_GPUS", "2,3"}});
  EXPECT_EQ(p.device, "cuda:0");
  EXPECT_EQ(p.where, "slurm job 7, gpu 2");
}

TEST(PlacementTest, AnExplicitDeviceIsKeptAndNothingKnownSaysNothing) {
  Placement p = PlaceWith("cuda:2", true, {});
  EXPECT_EQ(p.device, "cuda:2");
  EXPECT_EQ(p.where, "");
  p = PlaceWith("auto", false, {});
  EXPECT_EQ(p.device, "cpu");
  EXPECT_EQ(p.where, "");
}

}  // namespace
}  // namespace mixcal::worker
