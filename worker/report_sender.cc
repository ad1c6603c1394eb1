#include "worker/report_sender.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "worker/calls.h"

namespace mixcal::worker {

// One StreamReports call. Writes one report at a time from the sender's
// queue and reads acks until the call ends. Its flags are guarded by the
// sender's mu_. gRPC runs the reactions on its own threads, never inside a
// Start* call, so the sender may start operations from any thread; it does
// so without holding mu_, because releasing the last hold may run OnDone.
class ReportSender::Stream
    : public grpc::ClientBidiReactor<v1::WorkerReport, v1::ReportAcks> {
 public:
  explicit Stream(ReportSender* sender) : sender_(sender) {}

  void Start() {
    PrepareCall(ctx_, sender_->o_.token, absl::InfiniteDuration());
    sender_->o_.stub->async()->StreamReports(&ctx_, this);
    StartRead(&acks_);
    // The write side starts writes from outside the reactions (Push): the
    // hold keeps the call from ending before it says it will write no more.
    AddHold();
    StartCall();
  }

  // Ends the call at once; OnDone follows.
  void Cancel() { ctx_.TryCancel(); }

  void OnReadDone(bool ok) override {
    ReportSender& s = *sender_;
    bool end = !ok;  // not ok: the call ended or broke
    Action action;
    {
      absl::MutexLock lock(&s.mu_);
      if (ok) {
        for (const v1::ReportAck& a : acks_.acks()) {
          if (!s.TakeAck(a)) {
            end = true;
            break;
          }
        }
      }
      if (end) broken_ = true;
      action = s.NextActionLocked(*this);
    }
    if (ok && end) ctx_.TryCancel();
    if (!end) StartRead(&acks_);
    s.Perform(*this, action);  // last: releasing the hold may end the call
  }

  void OnWriteDone(bool ok) override {
    ReportSender& s = *sender_;
    Action action;
    {
      absl::MutexLock lock(&s.mu_);
      writing_ = false;
      if (!ok) broken_ = true;
      action = s.NextActionLocked(*this);
    }
    s.Perform(*this, action);
  }

  void OnDone(const grpc::Status& status) override {
    absl::MutexLock lock(&sender_->mu_);
    status_ = status;
    done_ = true;
  }

  // Guarded by sender_->mu_.
  bool writing_ = false;       // a StartWrite awaits its OnWriteDone
  bool broken_ = false;        // no more writes: the call is ending
  bool write_closed_ = false;  // the hold is released
  bool drained_ = false;       // ended with everything acknowledged
  bool done_ = false;          // OnDone ran: the sender may destroy this
  grpc::Status status_;
  v1::WorkerReport pending_;  // being written (acks may pop the queue)

 private:
  ReportSender* const sender_;
  grpc::ClientContext ctx_;
  v1::ReportAcks acks_;
};

ReportSender::ReportSender(const Options& options, JobControl* job)
    : o_(options), job_(job) {
  stop_subscription_ = o_.stop->OnStop([this] {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    stop_seen_us_ = o_.clock->NowMicros();
  });
  thread_ = std::thread([this] { Loop(); });
}

ReportSender::~ReportSender() {
  Close();
  Wait();
}

void ReportSender::Push(v1::WorkerReport report) {
  Stream* stream = nullptr;
  Action action = Action::kNone;
  {
    absl::MutexLock lock(&mu_);
    report.set_sequence(next_sequence_++);
    queue_.push_back(std::move(report));
    if (stream_ != nullptr) {
      stream = stream_;
      action = NextActionLocked(*stream);
    }
  }
  // The stream outlives this: it cannot end while it holds the write side
  // open, which the action decided above keeps or releases.
  if (stream != nullptr) Perform(*stream, action);
}

void ReportSender::Close() {
  Stream* stream = nullptr;
  Action action = Action::kNone;
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    closed_ = true;
    if (stream_ != nullptr) {
      stream = stream_;
      action = NextActionLocked(*stream);
    }
  }
  if (stream != nullptr) Perform(*stream, action);
}

void ReportSender::Wait() {
  if (thread_.joinable()) thread_.join();
}

size_t ReportSender::unacknowledged() const {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}

void ReportSender::Loop() {
  Backoff backoff(o_.retry_first, o_.retry_max);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !queue_.empty() || closed_;
  };
  auto lost = [this]() { return job_->lost(); };
  absl::MutexLock lock(&mu_);
  while (true) {
    mu_.Await(absl::Condition(&ready));
    if (queue_.empty() && closed_) return;
    if (job_->lost() || GivingUpLocked()) return;
    mu_.Unlock();
    const bool drained = StreamOnce();
    mu_.Lock();
    if (drained) {
      backoff.Reset();
    } else if (job_->lost()) {
      // Returns above.
    } else if (stopping_) {
      // The drain still paces its retries.
      mu_.AwaitWithTimeout(absl::Condition(&lost), absl::Milliseconds(200));
    } else {
      // Unreachable coordinator: keep the queue; a stop cuts the wait short.
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), backoff.Next());
    }
  }
}

bool ReportSender::StreamOnce() {
  Stream stream(this);
  stream.Start();
  {
    absl::MutexLock lock(&mu_);
    sent_ = 0;
    stream_ = &stream;
  }
  Kick(stream);
  bool cancelled = false;
  grpc::Status status;
  bool drained = false;
  size_t waiting = 0;
  {
    auto done = [&stream]() { return stream.done_; };
    auto done_or_lost = [&]() { return stream.done_ || job_->lost(); };
    auto done_lost_or_stopping = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stream.done_ || job_->lost() || stopping_;
    };
    absl::MutexLock lock(&mu_);
    while (!stream.done_) {
      if (!cancelled && (job_->lost() || GivingUpLocked())) {
        cancelled = true;
        mu_.Unlock();
        stream.Cancel();
        mu_.Lock();
      } else if (cancelled) {
        mu_.Await(absl::Condition(&done));
      } else if (stopping_ && !job_->cancelled()) {
        mu_.AwaitWithTimeout(absl::Condition(&done_or_lost), DrainLeftLocked());
      } else if (stopping_) {
        // A cancelled job's finish is not given up on.
        mu_.Await(absl::Condition(&done_or_lost));
      } else {
        mu_.Await(absl::Condition(&done_lost_or_stopping));
      }
    }
    stream_ = nullptr;
    status = stream.status_;
    drained = stream.drained_;
    waiting = queue_.size();
  }
  if (!drained && !job_->lost() && !status.ok() && !o_.stop->stopped()) {
    Log(absl::StrCat("report stream to ", o_.address, " broke (",
                     status.error_message(), "); ", waiting,
                     " reports wait to be resent"));
  }
  return drained;
}

ReportSender::Action ReportSender::NextActionLocked(Stream& stream) {
  if (stream.write_closed_ || stream.writing_) return Action::kNone;
  if (stream.broken_) {
    stream.write_closed_ = true;
    return Action::kRelease;
  }
  if (sent_ < queue_.size() &&
      (o_.max_in_flight == 0 || sent_ < o_.max_in_flight)) {
    stream.pending_ = queue_[sent_];
    ++sent_;
    stream.writing_ = true;
    return Action::kWrite;
  }
  if (closed_ && queue_.empty()) {
    stream.write_closed_ = true;
    stream.drained_ = true;
    return Action::kWritesDone;
  }
  return Action::kNone;
}

void ReportSender::Perform(Stream& stream, Action action) {
  switch (action) {
    case Action::kNone:
      return;
    case Action::kWrite:
      stream.StartWrite(&stream.pending_);
      return;
    case Action::kWritesDone:
      stream.StartWritesDone();
      stream.RemoveHold();
      return;
    case Action::kRelease:
      stream.RemoveHold();
      return;
  }
}

void ReportSender::Kick(Stream& stream) {
  Action action;
  {
    absl::MutexLock lock(&mu_);
    action = NextActionLocked(stream);
  }
  Perform(stream, action);
}

bool ReportSender::TakeAck(const v1::ReportAck& a) {
  if (queue_.empty() || sent_ == 0 ||
      queue_.front().sequence() != a.sequence()) {
    Log(absl::StrCat("ack for report ", a.sequence(), " out of order"));
    return false;
  }
  const auto code = static_cast<grpc::StatusCode>(a.code());
  const v1::WorkerReport& r = queue_.front();
  if (code == grpc::StatusCode::FAILED_PRECONDITION ||
      code == grpc::StatusCode::NOT_FOUND) {
    // Stale: a person cancelled the job (drop the report, stop training;
    // the finish still goes), or another attempt owns it now.
    if (r.has_finish()) {
      Log(absl::StrCat("job ", job_->job_id(),
                       ": finish refused: ", a.message()));
    } else if (a.state() == v1::CANCELLED || job_->cancelled()) {
      if (job_->MarkCancelled())
        Log(absl::StrCat("job ", job_->job_id(), " cancelled; stopping"));
    } else {
      job_->MarkLost();
      return false;
    }
  } else if (code == grpc::StatusCode::INVALID_ARGUMENT) {
    Log(absl::StrCat("report refused as invalid (dropped): ", a.message()));
  } else if (code != grpc::StatusCode::OK) {
    return false;  // not stored now: resent on the next stream
  } else if (o_.on_stored) {
    o_.on_stored(r, a);
  }
  if (code == grpc::StatusCode::OK && r.has_finish()) {
    Log(absl::StrCat("job ", job_->job_id(), " ", v1::JobState_Name(a.state()),
                     r.finish().error().empty()
                         ? ""
                         : absl::StrCat(": ", r.finish().error())));
  }
  queue_.pop_front();
  --sent_;
  return true;
}

bool ReportSender::GivingUpLocked() const {
  if (!stopping_ || job_->cancelled()) return false;
  return o_.clock->NowMicros() - stop_seen_us_ >=
         absl::ToInt64Microseconds(o_.stop_drain);
}

absl::Duration ReportSender::DrainLeftLocked() const {
  return absl::Microseconds(stop_seen_us_ +
                            absl::ToInt64Microseconds(o_.stop_drain) -
                            o_.clock->NowMicros());
}

}  // namespace mixcal::worker
