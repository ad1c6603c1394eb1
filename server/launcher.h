#ifndef MIXCAL_SERVER_LAUNCHER_H_
#define MIXCAL_SERVER_LAUNCHER_H_

// Workers on demand: the coordinator starts worker tasks through a batch
// scheduler's own commands. Launcher is the engine (Slurm here; Kubernetes
// Jobs would be another implementation of the same three calls);
// server/autoscaler.h decides when to call it.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace mixcal::server {

struct TaskCounts {
  int pending = 0;  // waiting for resources
  int running = 0;  // started (a worker, or about to be one)
  // Listed but neither: completing or just ended (Slurm's CG, F, CA...);
  // whether the launch failed is not known until the scheduler drops it.
  int ending = 0;
  // Why the scheduler holds the pending ones (Slurm's reason, e.g.
  // "Resources", "PartitionConfig"); empty when none pends.
  std::string pending_reason;
};

struct LaunchEnd {
  // In a line: each state with its reason and exit code, where the tasks'
  // output went.
  std::string summary;
  bool cancelled = false;  // every task was cancelled (scancel), none failed
};

class Launcher {
 public:
  virtual ~Launcher() = default;
  // The engine's name, kept with each launch ("slurm").
  virtual std::string engine() const = 0;
  // Submits `tasks` worker tasks for jobs of `device_class` (cpu | cuda) as
  // one unit (a Slurm array); returns the scheduler's id for it.
  virtual absl::StatusOr<std::string> Submit(const std::string& device_class,
                                             int tasks) = 0;
  // The tasks of each of `ids` the scheduler still lists; an id it no
  // longer lists (all its tasks ended) is absent.
  virtual absl::StatusOr<std::map<std::string, TaskCounts>> Query(
      const std::vector<std::string>& ids) = 0;
  // Cancels the tasks of `id` that have not started; running ones are left
  // to leave by themselves when idle.
  virtual absl::Status CancelPending(const std::string& id) = 0;
  // What the workers of `id`'s tasks register as their placement, up to
  // the task ("slurm job 41" for "slurm job 41_3, gpu 1"): how the
  // launcher tells tasks still starting from tasks whose worker is up.
  virtual std::string WorkerPlacement(const std::string& id) const = 0;
  // How the tasks of `id` ended, for a launch none of whose workers
  // registered.
  virtual LaunchEnd DescribeEnd(const std::string& id) = 0;
};

// Slurm through sbatch, squeue and scancel (on PATH, or `bin_dir`).
struct SlurmLauncherOptions {
  std::string script;      // the batch script: deploy/slurm/mixcal-worker.sbatch
  std::string job_name = "mixcal-worker";
  std::string partition;   // empty: the cluster's default
  std::string gres;        // per task, e.g. gpu:1; empty: the script's own
  std::string time_limit;  // e.g. 4:00:00; empty: the script's own
  std::string account;
  // The tasks' output files go here (mixcal-worker-<array>_<task>.out), an
  // absolute path every node can write; empty: the script's own --output.
  std::string log_dir;
  int cpus_per_task = 0;  // 0: the script's own, else Slurm's default
  std::vector<std::string> extra_args;  // more sbatch arguments
  // Added to the tasks' environment (sbatch passes the coordinator's own
  // environment on, too): MIXCAL_ADDRESS at least.
  std::map<std::string, std::string> env;
  std::string bin_dir;     // where sbatch/squeue/scancel are; empty: PATH
};
std::unique_ptr<Launcher> NewSlurmLauncher(const SlurmLauncherOptions& options);

// Runs argv[0] (searched on PATH) with `env` added to this process's
// environment; its stdout, or an error with its stderr and exit status.
// Killed after `timeout_s`.
absl::StatusOr<std::string> RunCommand(
    const std::vector<std::string>& argv,
    const std::map<std::string, std::string>& env = {}, int timeout_s = 60);

}  // namespace mixcal::server

#endif  // MIXCAL_SERVER_LAUNCHER_H_
