#include "worker/placement.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace mixcal::worker {
namespace {

std::string Get(const std::function<const char*(const char*)>& getenv,
                const char* name) {
  const char* v = getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

}  // namespace

Placement Place(const std::string& device, bool cuda_available,
                const std::function<const char*(const char*)>& getenv) {
  // The GPUs given to this process, as the scheduler numbers them. CUDA
  // renumbers the visible ones from 0, so the first is cuda:0 in here.
  std::string gpus = Get(getenv, "CUDA_VISIBLE_DEVICES");
  if (gpus.empty()) gpus = Get(getenv, "SLURM_JOB_GPUS");
  if (gpus.empty()) gpus = Get(getenv, "SLURM_STEP_GPUS");
  const std::string first_gpu =
      std::string(*absl::StrSplit(gpus, ',').begin());

  Placement p;
  p.device = device;
  if (device == "auto") p.device = cuda_available ? "cuda:0" : "cpu";

  std::vector<std::string> parts;
  const std::string job = Get(getenv, "SLURM_JOB_ID");
  const std::string array_job = Get(getenv, "SLURM_ARRAY_JOB_ID");
  const std::string task = Get(getenv, "SLURM_ARRAY_TASK_ID");
  if (!array_job.empty() && !task.empty()) {
    parts.push_back(absl::StrCat("slurm job ", array_job, "_", task));
  } else if (!job.empty()) {
    parts.push_back(absl::StrCat("slurm job ", job));
  }
  if (!first_gpu.empty()) {
    parts.push_back(absl::StrCat(
        "gpu ", first_gpu,
        p.device == "cpu" ? " (not used: no CUDA here, running on cpu)" : ""));
  }
  p.where = absl::StrJoin(parts, ", ");
  return p;
}

}  // namespace mixcal::worker
