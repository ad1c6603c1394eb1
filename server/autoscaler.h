#ifndef MIXCAL_SERVER_AUTOSCALER_H_
#define MIXCAL_SERVER_AUTOSCALER_H_

// When to start workers through a Launcher (server/launcher.h). Every
// period, for one device class:
//   - launches the scheduler no longer lists are marked ended;
//   - no queued job: still-pending tasks are cancelled;
//   - else tasks are submitted for the queued jobs that neither an idle
//     worker, a pending task nor a task still starting (running, its
//     worker not registered yet) will take, up to max_workers pending and
//     running together. So there are never more tasks on the way than
//     queued jobs.
//   - a launch that ended without any of its workers registering failed
//     (a bad script, an unwritable output path, no coordinator reachable):
//     the next submission waits period x 2^failures (at most 10 minutes);
//     after max_failures in a row the launcher stops submitting until the
//     coordinator restarts. Each is an event (`mixcal workers` shows them)
//     with the scheduler's reason.
// Launches are kept in the store: after a restart the same tick reconciles
// with the scheduler instead of submitting again.

#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "base/periodic.h"
#include "server/launcher.h"
#include "storage/store.h"

namespace mixcal::server {

struct AutoscalerOptions {
  std::string device_class = "cuda";  // jobs of this class (and "any")
  int max_workers = 4;                // tasks pending and running, at most
  absl::Duration period = absl::Seconds(5);
  // A worker counts as idle when heard from within this.
  int64_t idle_window_us = 60'000'000;
  // Launches in a row that ended with no worker registered, then it stops.
  int max_failures = 5;
  absl::Duration max_backoff = absl::Minutes(10);
};

class Autoscaler {
 public:
  Autoscaler(storage::Store* store, Launcher* launcher, Clock* clock,
             AutoscalerOptions options);
  ~Autoscaler();  // Stop()

  // One decision now (tests call this).
  absl::Status Tick();
  void Start();
  void Stop();

 private:
  void TickAndLog();
  // A launch the scheduler no longer lists: ended, failed if none of its
  // workers registered (and it was not cancelled).
  absl::Status Ended(const storage::Launch& launch);
  // A launch failed: back off, or stop after max_failures in a row.
  absl::Status Failed(std::string message);
  absl::Status Event(const std::string& kind, const std::string& message);

  storage::Store* const store_;
  Launcher* const launcher_;
  Clock* const clock_;
  const AutoscalerOptions o_;
  std::string last_error_;  // the thread's own: each distinct error once
  // Tick's own (one thread at a time):
  int failures_ = 0;           // launches in a row that failed
  int64_t next_submit_us_ = 0; // backing off until then
  bool stopped_ = false;       // max_failures reached
  std::set<std::string> cancelled_;                   // by this launcher
  std::map<std::string, std::string> pending_reason_; // last said, per launch
  PeriodicThread thread_;
};

}  // namespace mixcal::server

#endif  // MIXCAL_SERVER_AUTOSCALER_H_
