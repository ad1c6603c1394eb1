#ifndef MIXCAL_SERVER_LEASE_REAPER_H_
#define MIXCAL_SERVER_LEASE_REAPER_H_

// Expires the leases of workers that stopped heartbeating (DESIGN.md
// section 3): every period it asks the store for running jobs whose lease
// ran out on the store's Clock; they go back to the queue (or fail when
// their attempts are used up). Tests move the Clock and call ReapOnce.

#include <cstdint>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "storage/store.h"

namespace mixcal::server {

class LeaseReaper {
 public:
  // on_expired gets each pass's result (jobs requeued or failed).
  LeaseReaper(storage::Store* store, absl::Duration period,
              std::function<void(const storage::ExpireResult&)> on_expired);
  ~LeaseReaper();  // Stop()

  // Starts the thread.
  void Start();
  // One pass now, on the caller's thread.
  void ReapOnce();
  // Idempotent; returns after the thread has ended.
  void Stop();

 private:
  void Loop();

  storage::Store* const store_;
  const absl::Duration period_;
  std::function<void(const storage::ExpireResult&)> on_expired_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace mixcal::server

#endif  // MIXCAL_SERVER_LEASE_REAPER_H_
