#ifndef MIXCAL_SERVER_REPORT_STREAM_H_
#define MIXCAL_SERVER_REPORT_STREAM_H_

// One StreamReports call: a worker's epoch reports, checkpoints and finish
// for one job, read on gRPC's callback threads, handed to the ReportWriter,
// and acknowledged in order, each with its own status.

#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/support/server_callback.h"
#include "mixcal/v1/worker.pb.h"
#include "server/grpc_status.h"
#include "server/report_writer.h"

namespace mixcal::server {

class ReportStream
    : public grpc::ServerBidiReactor<v1::WorkerReport, v1::ReportAcks> {
 public:
  // Reports not yet acknowledged to the worker (with the writer, or acks
  // not yet sent) past which the stream is not read: a worker that writes
  // without reading its acks cannot make the coordinator hold more.
  static constexpr int kWindow = 1024;

  ReportStream(ReportWriter* writer, const absl::Status& auth)
      : writer_(writer) {
    if (!auth.ok()) {
      finished_ = true;
      Finish(ToGrpc(auth));
      return;
    }
    {
      absl::MutexLock lock(&mu_);
      reading_ = true;
    }
    StartRead(&incoming_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Act(Locked([&] {
        reading_ = false;
        reads_done_ = true;
      }));
      return;
    }
    // No other read is started until this report is submitted, so
    // `incoming_` stays put meanwhile, and the stream's reports reach the
    // writer in the order sent.
    bool dying = false, later = false;
    Act(Locked([&] {
      reading_ = false;
      dying = failed_ || finished_;
      later = !dying && ReportWriter::PreparingWrites(incoming_);
      if (later) preparing_ = true;  // the stream does not finish meanwhile
    }));
    if (dying) return;  // the report is not acked
    if (later) {
      // Its kept predictions are written on a preparing thread: a disk
      // that blocks must not hold up gRPC's callback threads.
      writer_->PrepareLater(&incoming_,
                            [this](storage::PreparedReport&& prepared) {
                              Submit(std::move(prepared));
                            });
      return;
    }
    Submit(writer_->Prepare(&incoming_));  // checks only, on this thread
  }

  // From the writer's ack thread: the results of this stream's next reports.
  void Acked(std::vector<v1::ReportAck>&& acks) {
    Act(Locked([&] {
      pending_ -= static_cast<int>(acks.size());
      if (failed_) return;
      for (v1::ReportAck& a : acks) *queued_.add_acks() = std::move(a);
    }));
  }

  void OnWriteDone(bool ok) override {
    Act(Locked([&] {
      writing_ = false;
      if (!ok) failed_ = true;
    }));
  }
  void OnCancel() override {
    Act(Locked([&] { failed_ = true; }));
  }
  void OnDone() override { delete this; }

 private:
  struct Next {
    bool read = false;
    bool write = false;
    std::optional<grpc::Status> finish;
  };

  // `incoming_`, prepared, to the writer (or dropped if the stream is
  // dying); then the next read, unless too much is unacknowledged.
  void Submit(storage::PreparedReport&& prepared) {
    Act(Locked([&] {
      preparing_ = false;
      if (failed_ || finished_) return;  // dying: the report is not acked
      ++pending_;
      writer_->Submit(this, std::move(incoming_), std::move(prepared));
      incoming_.Clear();
      if (Backlog() < kWindow) {
        read_now_ = true;
      } else {
        read_paused_ = true;
      }
    }));
  }

  // Changes state under the lock, then decides the next operations.
  template <typename F>
  Next Locked(F change) {
    absl::MutexLock lock(&mu_);
    change();
    Next n;
    if (finished_) return n;
    if (failed_) queued_.Clear();
    if (!writing_ && queued_.acks_size() > 0) {
      sending_ = std::move(queued_);
      queued_.Clear();
      writing_ = true;
      n.write = true;
    }
    if (read_paused_ && !failed_ && Backlog() < kWindow / 2) {
      read_paused_ = false;
      read_now_ = true;
    }
    if (read_now_ && !failed_) {
      n.read = true;
      reading_ = true;
    }
    read_now_ = false;
    // Finish only when nothing of this stream is left with the writer or
    // a preparing thread and no read is outstanding or about to start:
    // after Finish, OnDone deletes it, and reads are started from other
    // threads too (a preparing thread, the ack thread).
    if (pending_ == 0 && !preparing_ && !writing_ && !reading_ &&
        (failed_ || reads_done_)) {
      finished_ = true;
      n.finish = failed_ ? grpc::Status::CANCELLED : grpc::Status::OK;
    }
    return n;
  }
  int Backlog() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return pending_ + queued_.acks_size() +
           (writing_ ? sending_.acks_size() : 0);
  }
  // Outside the lock; Finish last: `this` may be gone after it.
  void Act(const Next& n) {
    if (n.read) StartRead(&incoming_);
    if (n.write) StartWrite(&sending_);
    if (n.finish) Finish(*n.finish);
  }

  ReportWriter* const writer_;
  v1::WorkerReport incoming_;  // the read in flight
  v1::ReportAcks sending_;     // the write in flight
  absl::Mutex mu_;
  v1::ReportAcks queued_ ABSL_GUARDED_BY(mu_);
  int pending_ ABSL_GUARDED_BY(mu_) = 0;  // with the writer, not yet acked
  bool preparing_ ABSL_GUARDED_BY(mu_) = false;  // incoming_, on a preparer
  bool reading_ ABSL_GUARDED_BY(mu_) = false;    // a read started, not done
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool read_now_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool failed_ ABSL_GUARDED_BY(mu_) = false;  // cancelled or a write failed
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace mixcal::server

#endif  // MIXCAL_SERVER_REPORT_STREAM_H_
