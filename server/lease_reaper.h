#ifndef MIXCAL_SERVER_LEASE_REAPER_H_
#define MIXCAL_SERVER_LEASE_REAPER_H_

// Expires the leases of workers that stopped heartbeating (DESIGN.md
// section 3): every period it asks the store for running jobs whose lease
// ran out on the store's Clock; they go back to the queue (or fail when
// their attempts are used up). Tests move the Clock and call ReapOnce.
//
// A full disk: while the database cannot grow, heartbeats cannot extend
// leases either, so leases run out through no fault of their workers. When
// a pass fails for lack of space, the reaper remembers it; its first pass
// that can write again gives every running job a fresh lease (as after a
// restart) before it expires anything, so space coming back does not cost
// live workers their jobs and their unacknowledged reports.

#include <cstdint>
#include <functional>

#include "absl/time/time.h"
#include "base/clock.h"
#include "base/periodic.h"
#include "storage/store.h"

namespace mixcal::server {

class LeaseReaper {
 public:
  // on_expired gets each pass's result (jobs requeued or failed).
  // A fresh lease after a full disk lasts `lease_us` on `clock`.
  LeaseReaper(storage::Store* store, absl::Duration period, Clock* clock,
              int64_t lease_us,
              std::function<void(const storage::ExpireResult&)> on_expired);
  ~LeaseReaper();  // Stop()

  // Starts the thread.
  void Start();
  // One pass now, on the caller's thread.
  void ReapOnce();
  // Idempotent; returns after the thread has ended.
  void Stop();

 private:
  storage::Store* const store_;
  Clock* const clock_;
  const int64_t lease_us_;
  // A pass failed for lack of space and none has written since (the
  // reaper's own thread, or ReapOnce's caller, only).
  bool full_ = false;
  std::function<void(const storage::ExpireResult&)> on_expired_;
  PeriodicThread thread_;
};

}  // namespace mixcal::server

#endif  // MIXCAL_SERVER_LEASE_REAPER_H_
