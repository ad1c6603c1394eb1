#ifndef MIXCAL_STORAGE_LAUNCHES_H_
#define MIXCAL_STORAGE_LAUNCHES_H_

// Worker tasks submitted to a batch scheduler (server/launcher.h): what the
// launcher started and has not seen end, and the demand it weighs. It owns
// the launches table and reads jobs and workers.
//
// Thread-safe. Errors: ResourceExhausted (a full disk), Internal (the file).

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "mixcal/v1/jobs.pb.h"

namespace mixcal::storage {

class Connection;

struct Launch {
  std::string scheduler_id;  // e.g. Slurm's array job id
  std::string device_class;  // cpu | cuda
  int tasks = 0;
  int64_t submitted_at_us = 0;
};

// What the launcher weighs: jobs a worker of a device class could take, and
// workers of that class that could take them now.
struct LaunchDemand {
  int64_t queued_jobs = 0;   // QUEUED, device the class or any, active sweeps
  int64_t idle_workers = 0;  // ACTIVE, heard from recently, no running job
};

class Launches {
 public:
  explicit Launches(Connection& c) : c_(c) {}
  Launches(const Launches&) = delete;
  Launches& operator=(const Launches&) = delete;

  // Idle workers are those heard from after `heard_after_us`.
  absl::StatusOr<LaunchDemand> GetLaunchDemand(const std::string& device_class,
                                               int64_t heard_after_us);
  absl::Status RecordLaunch(const std::string& engine, const Launch& launch);
  // Launches of `engine` not yet ended, oldest first.
  absl::StatusOr<std::vector<Launch>> ActiveLaunches(const std::string& engine);
  absl::Status EndLaunch(const std::string& engine,
                         const std::string& scheduler_id);

  // Workers that registered from a launch's tasks: distinct placements equal
  // to `placement` or starting with it and then "_" or "," (a Slurm array's
  // "slurm job 41" covers "slurm job 41_3, gpu 1"). With heard_after_us > 0
  // only active workers heard from since then (the tasks' workers alive
  // now); with 0 every worker that ever registered from it.
  absl::StatusOr<int64_t> WorkersFrom(const std::string& placement,
                                      int64_t heard_after_us);

  // The launcher's own events (sweep 0, job 0, kinds launch*): what it
  // submitted, what failed and why, when it backs off or stops.
  absl::Status AddLauncherEvent(const std::string& kind,
                                const std::string& message);
  // Its newest `limit` events, oldest first.
  absl::StatusOr<std::vector<v1::Event>> LauncherEvents(int limit);

 private:
  Connection& c_;
};

}  // namespace mixcal::storage

#endif  // MIXCAL_STORAGE_LAUNCHES_H_
