#ifndef MIXCAL_WORKER_REPORT_SENDER_H_
#define MIXCAL_WORKER_REPORT_SENDER_H_

// Sends one job's reports (epochs, checkpoints, the finish last) in order on
// WorkerService.StreamReports, and drops each once acknowledged.
//
//   ReportSender sender(options, &job);    // starts its thread
//   sender.Push(EpochReport(r, lease));    // from the training thread
//   sender.Push(finish);
//   sender.Close();                        // nothing more comes
//   sender.Wait();                         // acknowledged, lost or given up
//
// While the coordinator is unreachable training goes on and the queue
// waits; the stream is reopened with backoff and the unacknowledged reports
// resent in order (the store keys epoch reports by job, epoch and split, so
// a resend never duplicates a row). Acks that say the lease is stale mark
// the job lost (training stops at once) or, when a person cancelled it,
// cancelled (training stops; the finish still goes).
//
// Threads: one of its own, which opens streams and waits out backoffs; a
// stream's writes and reads are gRPC callbacks. The thread sleeps on a
// mutex until a report is pushed, Close is called, the stream ends or the
// worker stops. After the stop signal the reports still queued (the
// hand-back among them) may take `stop_drain`, as `clock` reads it, to
// reach the coordinator; then the sender gives up, except for a job a
// person cancelled, whose finish it keeps trying to deliver. (The drain is
// waited as a timeout computed from the clock: a ManualClock moved forward
// is seen at the next wake, e.g. the 200 ms between retries.)

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "mixcal/v1/worker.grpc.pb.h"
#include "worker/job_control.h"
#include "worker/stop_signal.h"

namespace mixcal::worker {

class ReportSender {
 public:
  struct Options {
    v1::WorkerService::Stub* stub = nullptr;  // not owned; required
    std::string token;                        // empty = none
    std::string address;                      // named in log lines
    StopSignal* stop = nullptr;               // not owned; required
    Clock* clock = SystemClock();             // not owned
    absl::Duration stop_drain = absl::Seconds(10);
    // Between streams while the coordinator is unreachable: `retry_first`,
    // doubling up to `retry_max`.
    absl::Duration retry_first = absl::Milliseconds(100);
    absl::Duration retry_max = absl::Seconds(5);
    // Reports written on a stream and not yet acknowledged, at most; 0 = no
    // bound. The worker leaves it 0: it pushes a report an epoch, which the
    // coordinator's own window (1,024) bounds. A sender pushed many at once
    // (bench/dispatch_bench.cc) sets one.
    size_t max_in_flight = 0;
    // Called (on the sender's thread) for each report the coordinator
    // stored, with its ack: what may be cleaned up after it.
    std::function<void(const v1::WorkerReport&, const v1::ReportAck&)>
        on_stored;
  };

  // Starts the thread. `options`' pointers and `job` must outlive this.
  ReportSender(const Options& options, JobControl* job);
  // Close() and Wait().
  ~ReportSender();
  ReportSender(const ReportSender&) = delete;
  ReportSender& operator=(const ReportSender&) = delete;

  // Queues `report` after those pushed before, numbering it. Any thread;
  // never blocks on the network.
  void Push(v1::WorkerReport report);
  // No more reports: the sender ends once the queue is acknowledged.
  // Idempotent.
  void Close();
  // Returns when the sender ended: after Close everything was acknowledged,
  // or the lease was lost, or the worker stopped and the drain time ran out.
  void Wait();

  // Reports not yet acknowledged.
  size_t unacknowledged() const;

 private:
  class Stream;
  enum class Action { kNone, kWrite, kWritesDone, kRelease };

  void Loop();
  // One stream, until it ends; true when it ended with everything
  // acknowledged and the queue closed.
  bool StreamOnce();
  // What `stream` is to do next; the caller performs it without mu_.
  Action NextActionLocked(Stream& stream) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Perform(Stream& stream, Action action) ABSL_LOCKS_EXCLUDED(mu_);
  void Kick(Stream& stream) ABSL_LOCKS_EXCLUDED(mu_);
  // The ack of the oldest report in flight. False when the stream should
  // end: the lease is lost, or the coordinator could not store it now.
  bool TakeAck(const v1::ReportAck& ack) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool GivingUpLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Until the drain time runs out, as the clock reads it.
  absl::Duration DrainLeftLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options o_;
  JobControl* const job_;
  mutable absl::Mutex mu_;
  // Reports not yet acknowledged, in order; the first `sent_` of them were
  // written on the current stream.
  std::deque<v1::WorkerReport> queue_ ABSL_GUARDED_BY(mu_);
  size_t sent_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 1;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t stop_seen_us_ ABSL_GUARDED_BY(mu_) = 0;
  Stream* stream_ ABSL_GUARDED_BY(mu_) = nullptr;  // the open one, if any
  std::thread thread_;
  // Last: unsubscribed before the members its callback touches go.
  StopSignal::Subscription stop_subscription_;
};

}  // namespace mixcal::worker

#endif  // MIXCAL_WORKER_REPORT_SENDER_H_
