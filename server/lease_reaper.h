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
// live workers their jobs and their unacknowledged reports. Any other
// failure of a pass is logged (at most a line every 10 s) and the next
// pass tries again.
//
// What a pass changed is published here: watchers hear of every job
// requeued or failed, and the dispatcher of jobs queued again.

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "base/clock.h"
#include "base/periodic.h"
#include "server/dispatcher.h"
#include "server/watch_hub.h"
#include "storage/store.h"

namespace mixcal::server {

class LeaseReaper {
 public:
  // A fresh lease after a full disk lasts `lease_us` on `clock`. Every
  // pointer must outlive the reaper.
  LeaseReaper(storage::Store* store, WatchHub* hub, Dispatcher* dispatcher,
              absl::Duration period, Clock* clock, int64_t lease_us);
  ~LeaseReaper();  // Stop()

  // Starts the thread.
  void Start();
  // The database was full when the coordinator started (before Start):
  // running leases get a fresh term before any is judged.
  void MarkFull() { full_ = true; }
  // One pass now, on the caller's thread: what failed, if anything (also
  // logged).
  absl::Status ReapOnce();
  // Idempotent; returns after the thread has ended.
  void Stop();

 private:
  absl::Status Pass();
  // A line on stderr; one that `repeats` (a failing pass) at most every
  // 10 s.
  void Log(const std::string& line, bool repeats);

  storage::Store* const store_;
  WatchHub* const hub_;
  Dispatcher* const dispatcher_;
  Clock* const clock_;
  const int64_t lease_us_;
  // A pass failed for lack of space and none has written since (the
  // reaper's own thread, or ReapOnce's caller, only).
  bool full_ = false;
  // The latest refused heartbeat (JobQueue's clock) this reaper has acted on.
  int64_t refused_seen_us_ = 0;
  absl::Time last_logged_ = absl::InfinitePast();  // the same threads only
  int64_t left_out_ = 0;                           // lines not logged since
  PeriodicThread thread_;
};

}  // namespace mixcal::server

#endif  // MIXCAL_SERVER_LEASE_REAPER_H_
