#ifndef MIXCAL_BASE_PERIODIC_H_
#define MIXCAL_BASE_PERIODIC_H_

// A thread that calls `tick` every `period` until stopped: the reaper, the
// listener watch and the launcher are each one of these.

#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace mixcal {

class PeriodicThread {
 public:
  // The first tick comes one period after Start, or at once when
  // `tick_at_start`.
  PeriodicThread(absl::Duration period, std::function<void()> tick,
                 bool tick_at_start = false);
  ~PeriodicThread();  // Stop()
  PeriodicThread(const PeriodicThread&) = delete;
  PeriodicThread& operator=(const PeriodicThread&) = delete;

  void Start();
  // Idempotent; returns once the thread has ended (a tick in progress
  // finishes first).
  void Stop();

 private:
  void Loop();

  const absl::Duration period_;
  std::function<void()> tick_;
  const bool tick_at_start_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace mixcal

#endif  // MIXCAL_BASE_PERIODIC_H_
