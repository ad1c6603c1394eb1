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

 private:
  Connection& c_;
};

}  // namespace mixcal::storage

#endif  // MIXCAL_STORAGE_LAUNCHES_H_
