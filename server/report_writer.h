#ifndef MIXCAL_SERVER_REPORT_WRITER_H_
#define MIXCAL_SERVER_REPORT_WRITER_H_

// The coordinator's one writer of worker reports. Every report, streamed
// (StreamReports) or unary (ReportEpoch, ReportCheckpoint, FinishJob), goes
// one way through it:
//
//   prepare   its own checks and its kept predictions' bytes
//             (storage::ReportLog::PrepareReport): the checks on the thread
//             that received it, the bytes of a report that keeps
//             predictions (a file append: disk I/O, which may block) on one
//             of two preparing threads, never on gRPC's callback threads;
//   write     queued, and stored by one thread, everything waiting (up to
//             2,048) in one transaction (storage::ReportLog::StoreReports:
//             fencing, the finish and checkpoint rules);
//   publish   on that thread, after the commit: watchers hear of stored
//             epochs and ended jobs (WatchHub), the dispatcher of jobs
//             handed back to the queue;
//   ack       a second thread sends each stream its acks, in order, and
//             wakes unary callers, so the writer goes straight on to the
//             next batch (docs/coordinator.md).

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "mixcal/v1/worker.pb.h"
#include "server/dispatcher.h"
#include "server/watch_hub.h"
#include "storage/store.h"

namespace mixcal::server {

class ReportStream;

// One thread that stores what the report streams delivered: everything
// waiting is written in one transaction; a second sends each stream its
// acks, in order.
class ReportWriter {
 public:
  // A unary call waiting for its one report (ReportEpoch).
  struct Waiter {
    absl::Notification done;
    storage::ReportResult result;
  };
  struct Item {
    ReportStream* stream;  // or null, and then `waiter` is set
    Waiter* waiter;
    v1::WorkerReport report;
    storage::PreparedReport prepared;
  };
  // Every pointer must outlive the writer.
  ReportWriter(storage::Store* store, WatchHub* hub, Dispatcher* dispatcher)
      : store_(store), hub_(hub), dispatcher_(dispatcher) {
    thread_ = std::thread([this] { Loop(); });
    acker_ = std::thread([this] { AckLoop(); });
    for (std::thread& t : preparers_)
      t = std::thread([this] { PrepareLoop(); });
  }
  ~ReportWriter() { Stop(); }

  // Checks `report` and writes its predictions' bytes (dropping them from
  // it), on this thread; the answer goes to Submit with it.
  storage::PreparedReport Prepare(v1::WorkerReport* report) {
    return store_->reports().PrepareReport(report);
  }
  // Whether preparing `report` writes to disk (it keeps predictions): then
  // PrepareLater, not Prepare, on a thread that must not block.
  static bool PreparingWrites(const v1::WorkerReport& report) {
    return report.has_epoch() && report.epoch().predictions_size() > 0;
  }
  // Prepares `report` on a preparing thread, then calls `done` there with
  // the answer; `report` must stay put until then.
  void PrepareLater(v1::WorkerReport* report,
                    std::function<void(storage::PreparedReport&&)> done) {
    absl::MutexLock lock(&prep_mu_);
    prep_queue_.push_back({report, std::move(done)});
  }
  void Submit(ReportStream* stream, v1::WorkerReport&& report,
              storage::PreparedReport&& prepared) {
    absl::MutexLock lock(&mu_);
    queue_.push_back({stream, nullptr, std::move(report), std::move(prepared)});
  }
  // Stores one report (a unary call) with whatever else is waiting; blocks
  // until it is stored and published.
  storage::ReportResult StoreOne(v1::WorkerReport&& report) {
    Waiter waiter;
    storage::PreparedReport prepared = Prepare(&report);
    {
      absl::MutexLock lock(&mu_);
      queue_.push_back(
          {nullptr, &waiter, std::move(report), std::move(prepared)});
    }
    waiter.done.WaitForNotification();
    return std::move(waiter.result);
  }
  // After every stream is done (the server shut down).
  void Stop() {
    {
      absl::MutexLock lock(&prep_mu_);
      if (prep_stop_) return;
      prep_stop_ = true;
    }
    for (std::thread& t : preparers_) t.join();  // their queue drained
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    thread_.join();
    {
      absl::MutexLock lock(&ack_mu_);
      ack_stop_ = true;
    }
    acker_.join();
  }

 private:
  // A stored batch on its way back: the acks are sent, and the reports
  // freed, by a second thread, so that the writer goes on to the next batch.
  struct Stored {
    std::vector<Item> batch;
    std::vector<storage::ReportResult> results;
  };
  struct PrepareTask {
    v1::WorkerReport* report;
    std::function<void(storage::PreparedReport&&)> done;
  };
  void Loop();
  void AckLoop();
  void PrepareLoop();
  // Writes a batch in one transaction; returns each report's result.
  std::vector<storage::ReportResult> Write(const std::vector<Item>& batch);
  // Tells watchers and the dispatcher what the batch changed.
  void Publish(const std::vector<Item>& batch,
               const std::vector<storage::ReportResult>& results);

  storage::Store* const store_;
  WatchHub* const hub_;
  Dispatcher* const dispatcher_;
  absl::Mutex mu_;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
  absl::Mutex ack_mu_;
  std::deque<Stored> stored_ ABSL_GUARDED_BY(ack_mu_);
  bool ack_stop_ ABSL_GUARDED_BY(ack_mu_) = false;
  std::thread acker_;
  absl::Mutex prep_mu_;
  std::deque<PrepareTask> prep_queue_ ABSL_GUARDED_BY(prep_mu_);
  bool prep_stop_ ABSL_GUARDED_BY(prep_mu_) = false;
  std::thread preparers_[2];
};

}  // namespace mixcal::server

#endif  // MIXCAL_SERVER_REPORT_WRITER_H_
