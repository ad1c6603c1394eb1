#ifndef MIXCAL_SERVER_AUTOSCALER_H_
#define MIXCAL_SERVER_AUTOSCALER_H_

// When to start workers through a Launcher (server/launcher.h). Every
// period, for one device class:
//   - launches the scheduler no longer lists are marked ended;
//   - no queued job: still-pending tasks are cancelled;
//   - else tasks are submitted for the queued jobs that neither an idle
//     worker nor a pending task will take, up to max_workers pending and
//     running together. So there are never more pending tasks than queued
//     jobs.
// Launches are kept in the store: after a restart the same tick reconciles
// with the scheduler instead of submitting again.

#include <memory>
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

  storage::Store* const store_;
  Launcher* const launcher_;
  Clock* const clock_;
  const AutoscalerOptions o_;
  std::string last_error_;  // the thread's own: each distinct error once
  PeriodicThread thread_;
};

}  // namespace mixcal::server

#endif  // MIXCAL_SERVER_AUTOSCALER_H_
