#ifndef MIXCAL_WORKER_PLACEMENT_H_
#define MIXCAL_WORKER_PLACEMENT_H_

// Where a worker runs, read from what its scheduler put in the environment:
// the GPU it was given (CUDA_VISIBLE_DEVICES, else Slurm's SLURM_JOB_GPUS or
// SLURM_STEP_GPUS) and the Slurm job and array task. `--device auto` takes
// that GPU on a CUDA build, else the CPU.

#include <functional>
#include <string>

namespace mixcal::worker {

struct Placement {
  std::string device;  // cpu | cuda:N
  std::string where;   // e.g. "slurm job 41_3, gpu 1"; "" when nothing is known
};

// `getenv` reads one variable (nullptr when unset); `device` is the
// --device flag (auto resolves; anything else is kept).
Placement Place(const std::string& device, bool cuda_available,
                const std::function<const char*(const char*)>& getenv);

}  // namespace mixcal::worker

#endif  // MIXCAL_WORKER_PLACEMENT_H_
