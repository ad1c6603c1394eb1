#ifndef MIXCAL_STORAGE_INTERNAL_CONNECTION_H_
#define MIXCAL_STORAGE_INTERNAL_CONNECTION_H_

// The one SQLite connection the store's components share, with the lock
// that serialises them, the clock they read and the predictions file.
//
// Every component call takes the connection with a RequestLock, except the
// report writer's batches, which take a ReportLock: requests (a worker's
// next job, a finish, a query) go first, so that a writer that retakes the
// lock as soon as it lets go does not keep them waiting for batches.
//
//   RequestLock lock(conn);
//   Transaction txn(conn.db());
//   ...

#include <atomic>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "base/clock.h"
#include "storage/internal/blob_file.h"
#include "storage/internal/sqlite.h"

namespace mixcal::storage {

class Connection {
 public:
  // `blobs` is null for ":memory:" (kept predictions stay in the rows).
  Connection(std::unique_ptr<Database> db, Clock* clock,
             std::unique_ptr<BlobFile> blobs)
      : db_(std::move(db)), clock_(clock), blobs_(std::move(blobs)) {}

  // The connection; only with mu() held (a RequestLock or ReportLock).
  Database* db() { return db_.get(); }
  Clock* clock() const { return clock_; }
  // The predictions file, or null; thread-safe without mu().
  BlobFile* blobs() const { return blobs_.get(); }
  absl::Mutex& mu() ABSL_LOCK_RETURNED(mu_) { return mu_; }

  // Counts a caller that will soon ask for the lock (a RequestLock, or a
  // PriorityScope around several): the report writer waits for it. Atomic
  // on the way (every request passes here twice); the writer's mutex only
  // when the count drops to zero while the writer waits.
  void AddWaiting(int n) {
    if (waiting_.fetch_add(n) + n == 0 && writer_waits_.load()) {
      absl::MutexLock lock(&turn_mu_);  // the writer's condition is re-read
    }
  }
  // Waits until no request waits, for at most `limit`.
  void AwaitNoRequests(absl::Duration limit) {
    if (waiting_.load() == 0) return;
    absl::MutexLock lock(&turn_mu_);
    writer_waits_.store(true);
    auto none = [this] { return waiting_.load() == 0; };
    turn_mu_.AwaitWithTimeout(absl::Condition(&none), limit);
    writer_waits_.store(false);
  }

 private:
  absl::Mutex mu_;
  const std::unique_ptr<Database> db_;
  Clock* const clock_;
  const std::unique_ptr<BlobFile> blobs_;
  absl::Mutex turn_mu_;  // the report writer waits on it for its turn
  std::atomic<int> waiting_{0};
  std::atomic<bool> writer_waits_{false};
};

// A request's hold on the connection: taken before a waiting ReportLock.
class ABSL_SCOPED_LOCKABLE RequestLock {
 public:
  explicit RequestLock(Connection& c) ABSL_EXCLUSIVE_LOCK_FUNCTION(c.mu())
      : c_(c) {
    c_.AddWaiting(1);
    c_.mu().Lock();
    c_.AddWaiting(-1);
  }
  ~RequestLock() ABSL_UNLOCK_FUNCTION() { c_.mu().Unlock(); }
  RequestLock(const RequestLock&) = delete;
  RequestLock& operator=(const RequestLock&) = delete;

 private:
  Connection& c_;
};

// The report writer's hold: lets waiting requests go first, for at most
// about 10 ms, so that a steady stream of requests cannot starve it.
class ABSL_SCOPED_LOCKABLE ReportLock {
 public:
  explicit ReportLock(Connection& c) ABSL_EXCLUSIVE_LOCK_FUNCTION(c.mu())
      : c_(c) {
    c_.AwaitNoRequests(absl::Milliseconds(10));
    c_.mu().Lock();
  }
  ~ReportLock() ABSL_UNLOCK_FUNCTION() { c_.mu().Unlock(); }
  ReportLock(const ReportLock&) = delete;
  ReportLock& operator=(const ReportLock&) = delete;

 private:
  Connection& c_;
};

}  // namespace mixcal::storage

#endif  // MIXCAL_STORAGE_INTERNAL_CONNECTION_H_
