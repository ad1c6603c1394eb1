#ifndef MIXCAL_WORKER_HEARTBEATER_H_
#define MIXCAL_WORKER_HEARTBEATER_H_

// Keeps one job's lease alive: a Heartbeat call every `interval` (the
// coordinator's heartbeat_interval_ms), the first one interval after the
// start. A reply naming the lease cancelled marks the job cancelled; one
// naming it lost, or NOT_FOUND (the worker is unknown), marks it lost;
// either stops training. An unreachable coordinator changes nothing:
// training goes on and the lease may still hold.
//
//   Heartbeater heart(options, &job);   // starts its thread
//   ...                                 // train
//   heart.Stop();                       // or destroy it
//
// Threads: one of its own, which waits on a mutex for the interval to pass,
// Stop(), or the worker's stop signal (heartbeats end with it: the job is
// being handed back), and blocks in the Heartbeat call (call_timeout) in
// between; Stop() and the stop signal cancel a call in flight.

#include <cstdint>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "mixcal/v1/worker.grpc.pb.h"
#include "worker/job_control.h"
#include "worker/stop_signal.h"

namespace mixcal::worker {

class Heartbeater {
 public:
  struct Options {
    v1::WorkerService::Stub* stub = nullptr;  // not owned; required
    std::string token;                        // empty = none
    int64_t worker_id = 0;
    absl::Duration interval = absl::Seconds(5);
    absl::Duration call_timeout = absl::Seconds(5);  // each Heartbeat call's
    StopSignal* stop = nullptr;                      // not owned; required
  };

  // Starts the thread. `options`' pointers and `job` must outlive this.
  Heartbeater(const Options& options, JobControl* job);
  ~Heartbeater();  // Stop()
  Heartbeater(const Heartbeater&) = delete;
  Heartbeater& operator=(const Heartbeater&) = delete;

  // Ends the heartbeats: wakes the thread, cancels a call in flight, and
  // returns once the thread has ended. Idempotent; not from two threads at
  // once.
  void Stop();

  // Heartbeat calls answered so far (tests).
  int answered() const;

 private:
  void Loop();
  void Beat();  // one call, and what its reply says

  const Options o_;
  JobControl* const job_;
  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* in_flight_ ABSL_GUARDED_BY(mu_) = nullptr;
  int answered_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
  // Last: unsubscribed before the members its callback touches go.
  StopSignal::Subscription stop_subscription_;
};

}  // namespace mixcal::worker

#endif  // MIXCAL_WORKER_HEARTBEATER_H_
