#ifndef MIXCAL_SERVER_REPORT_WRITER_H_
#define MIXCAL_SERVER_REPORT_WRITER_H_

// The coordinator's one writer of worker reports: epoch metrics,
// checkpoints and finishes from every StreamReports stream (and the unary
// ReportEpoch calls) are queued here and stored by one thread, everything
// waiting (up to 2,048) in one transaction; a second thread sends each
// stream its acks, in order, so the writer goes straight on to the next
// batch (docs/coordinator.md). What needs no lock or row, a report's own
// checks and its kept predictions' bytes, is done before it is queued
// (storage::Store::PrepareReport): the checks on the thread that received
// the report, the bytes of a report that keeps predictions (a file append:
// disk I/O, which may block) on one of two preparing threads, never on
// gRPC's callback threads.

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "mixcal/v1/worker.pb.h"
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
  // Checks a report and writes its predictions' bytes (dropping them from
  // the report), on the caller's thread.
  using PrepareFn = std::function<storage::PreparedReport(v1::WorkerReport*)>;
  // Stores a batch; returns each report's result, in order.
  using StoreFn =
      std::function<std::vector<storage::ReportResult>(std::vector<Item>&)>;

  ReportWriter(PrepareFn prepare, StoreFn store)
      : prepare_(std::move(prepare)), store_(std::move(store)) {
    thread_ = std::thread([this] { Loop(); });
    acker_ = std::thread([this] { AckLoop(); });
    for (std::thread& t : preparers_) t = std::thread([this] { PrepareLoop(); });
  }
  ~ReportWriter() { Stop(); }

  // PrepareFn's answer for `report`, to Submit with it, on this thread.
  storage::PreparedReport Prepare(v1::WorkerReport* report) {
    return prepare_(report);
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
    queue_.push_back(
        {stream, nullptr, std::move(report), std::move(prepared)});
  }
  // Stores one report with whatever else is waiting; blocks until it is.
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

  PrepareFn prepare_;
  StoreFn store_;
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
