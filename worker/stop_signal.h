#ifndef MIXCAL_WORKER_STOP_SIGNAL_H_
#define MIXCAL_WORKER_STOP_SIGNAL_H_

// The worker's "leave now" (SIGTERM, SIGINT, a test), set once and heard at
// once by whoever waits: a backoff, a long poll, training, the heartbeater
// and the report sender.
//
//   StopSignal stop;
//   StopSignal::Subscription s =
//       stop.OnStop([&ctx] { ctx.TryCancel(); });  // wakes a blocking call
//   stop.WaitFor(absl::Seconds(1));                // a backoff stop cuts short
//
// Thread-safe. Stop() locks a mutex, so it must not be called from a signal
// handler: block the signals and call it from a thread that sigwait()s
// (worker_main.cc does).

#include <cstdint>
#include <functional>
#include <map>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace mixcal::worker {

class StopSignal {
 public:
  // A callback registered by OnStop; unregisters it when destroyed, waiting
  // for it to return if it is running. So a callback may use what it
  // captured for as long as its Subscription lives. Destroy it on a thread
  // that holds no lock the callback takes.
  class Subscription {
   public:
    Subscription() = default;
    Subscription(Subscription&& other) noexcept;
    Subscription& operator=(Subscription&& other) noexcept;
    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;
    ~Subscription();

   private:
    friend class StopSignal;
    Subscription(StopSignal* signal, uint64_t id) : signal_(signal), id_(id) {}
    StopSignal* signal_ = nullptr;
    uint64_t id_ = 0;
  };

  StopSignal() = default;
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  // Sets the signal (idempotent) and runs every registered callback once, in
  // registration order, on the calling thread, then wakes WaitFor.
  void Stop();
  bool stopped() const;
  // Waits until stopped or `timeout` passed; true when stopped.
  bool WaitFor(absl::Duration timeout) const;

  // Calls `callback` when Stop() is called, or at once (on this thread) when
  // it was already. The callback must not call back into this StopSignal
  // except stopped().
  [[nodiscard]] Subscription OnStop(std::function<void()> callback);

 private:
  void Remove(uint64_t id);

  mutable absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<uint64_t, std::function<void()>> callbacks_ ABSL_GUARDED_BY(mu_);
  // The callback Stop() runs now (outside mu_); 0 = none.
  uint64_t running_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace mixcal::worker

#endif  // MIXCAL_WORKER_STOP_SIGNAL_H_
