#ifndef MIXCAL_STORAGE_INTERNAL_STORE_LOCKS_H_
#define MIXCAL_STORAGE_INTERNAL_STORE_LOCKS_H_

// How the store's calls take its one connection (Store::mu_).

#include <atomic>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "storage/store.h"

namespace mixcal::storage {

// Requests other than epoch reports (a worker's next job, a finish, a
// query) take the store before the report writer does: the writer retakes
// it as soon as it lets go, and would otherwise keep them waiting for
// several batches.
class Store::RequestLock {
 public:
  explicit RequestLock(Store* s) ABSL_EXCLUSIVE_LOCK_FUNCTION(s->mu_) : s_(s) {
    s_->requests_waiting_.fetch_add(1, std::memory_order_relaxed);
    s_->mu_.Lock();
    s_->requests_waiting_.fetch_sub(1, std::memory_order_relaxed);
  }
  ~RequestLock() ABSL_UNLOCK_FUNCTION() { s_->mu_.Unlock(); }

 private:
  Store* const s_;
};

class Store::ReportLock {
 public:
  explicit ReportLock(Store* s) ABSL_EXCLUSIVE_LOCK_FUNCTION(s->mu_) : s_(s) {
    // Let waiting requests go first, for at most about 10 ms.
    for (int i = 0;
         i < 500 && s_->requests_waiting_.load(std::memory_order_relaxed) > 0;
         ++i) {
      absl::SleepFor(absl::Microseconds(20));
    }
    s_->mu_.Lock();
  }
  ~ReportLock() ABSL_UNLOCK_FUNCTION() { s_->mu_.Unlock(); }

 private:
  Store* const s_;
};

}  // namespace mixcal::storage

#endif  // MIXCAL_STORAGE_INTERNAL_STORE_LOCKS_H_
