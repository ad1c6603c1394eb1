#ifndef MIXCAL_SERVER_DISPATCHER_H_
#define MIXCAL_SERVER_DISPATCHER_H_

// Long-polling AcquireJob: holds idle workers' calls and answers each as
// soon as a job it can run is queued (Notify), or empty at its deadline.
// One thread; an idle worker costs an open call, not a loop. Deadlines are
// read from the Clock, so tests move time instead of waiting.
//
//   Dispatcher d(store, lease_us, clock, on_leased);
//   return d.Acquire(worker_id, wait_ms, auth, response);   // the handler
//   d.Notify();                                 // after jobs were queued

#include <cstdint>
#include <functional>
#include <list>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "base/clock.h"
#include "grpcpp/support/server_callback.h"
#include "mixcal/v1/worker.pb.h"
#include "storage/store.h"

namespace mixcal::server {

class AcquireReactor;

class Dispatcher {
 public:
  // The longest a worker's AcquireJob may wait, and its default.
  static constexpr uint32_t kMaxWaitMs = 60000;
  static constexpr uint32_t kDefaultWaitMs = 10000;

  // on_leased is called (on the dispatcher's thread) with each job leased.
  Dispatcher(storage::Store* store, int64_t lease_us, Clock* clock,
             std::function<void(const v1::Job&)> on_leased);
  // Ends every waiting call with UNAVAILABLE.
  ~Dispatcher();

  // The reactor of one AcquireJob call. `auth` is the call's
  // authentication result. The first attempt to lease runs on the
  // dispatcher's thread: the caller is one of gRPC's callback threads,
  // which must not wait for the store.
  grpc::ServerUnaryReactor* Acquire(int64_t worker_id, uint32_t wait_ms,
                                    const absl::Status& auth,
                                    v1::AcquireJobResponse* response);

  // Jobs were queued (or requeued): every waiting worker tries again.
  void Notify();

 private:
  friend class AcquireReactor;
  void Cancel(AcquireReactor* r);
  // True when r was finished (with a job or an error).
  bool TryLease(AcquireReactor* r);
  void Loop();

  storage::Store* const store_;
  const int64_t lease_us_;
  Clock* const clock_;
  std::function<void(const v1::Job&)> on_leased_;
  absl::Mutex mu_;
  std::list<AcquireReactor*> waiters_ ABSL_GUARDED_BY(mu_);
  std::list<AcquireReactor*> fresh_ ABSL_GUARDED_BY(mu_);  // not yet tried
  bool dirty_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace mixcal::server

#endif  // MIXCAL_SERVER_DISPATCHER_H_
