#ifndef MIXCAL_WORKER_JOB_CONTROL_H_
#define MIXCAL_WORKER_JOB_CONTROL_H_

// One job's verdicts, shared by the job loop, its report sender and its
// heartbeater, and set by whichever hears them first: a person cancelled
// the job, the lease is someone else's now, or the worker stops. Each sets
// the trainer's cancel flag. A new one for every job, so that nothing one
// job learnt leaks into the next. Thread-safe.

#include <atomic>
#include <cstdint>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "mixcal/v1/jobs.pb.h"

namespace mixcal::worker {

class JobControl {
 public:
  explicit JobControl(v1::Lease lease) : lease_(std::move(lease)) {}
  JobControl(const JobControl&) = delete;
  JobControl& operator=(const JobControl&) = delete;

  const v1::Lease& lease() const { return lease_; }
  int64_t job_id() const { return lease_.job_id(); }

  // What TrainHooks::cancel points at; set by every call below.
  const std::atomic<bool>* cancel_flag() const { return &cancel_; }

  // Training is to stop (the worker stops, or training returned).
  void StopTraining();
  // A person cancelled the job: training stops and the finish (CANCELLED)
  // still goes. True the first time.
  bool MarkCancelled();
  // The lease is lost: training stops and nothing more is sent. True the
  // first time.
  bool MarkLost();

  bool cancelled() const { return cancelled_.load(); }
  bool lost() const { return lost_.load(); }

  // Waits until the cancel flag is set or `timeout` passed; true when set.
  bool WaitForStopTraining(absl::Duration timeout) const;

 private:
  void SetCancelFlag();

  const v1::Lease lease_;
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> lost_{false};
  mutable absl::Mutex mu_;
  // Changed under mu_ so that WaitForStopTraining wakes; read lock-free by
  // the trainer between batches.
  std::atomic<bool> cancel_{false};
};

}  // namespace mixcal::worker

#endif  // MIXCAL_WORKER_JOB_CONTROL_H_
