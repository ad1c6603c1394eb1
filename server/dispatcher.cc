#include "server/dispatcher.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/grpc_status.h"

namespace mixcal::server {

class AcquireReactor : public grpc::ServerUnaryReactor {
 public:
  AcquireReactor(Dispatcher* d, int64_t worker_id, int64_t deadline_us,
                 v1::AcquireJobResponse* response)
      : dispatcher_(d),
        worker_id_(worker_id),
        deadline_us_(deadline_us),
        response_(response) {}
  void OnCancel() override { dispatcher_->Cancel(this); }
  void OnDone() override { delete this; }

  Dispatcher* const dispatcher_;
  const int64_t worker_id_;
  const int64_t deadline_us_;  // on the dispatcher's clock
  v1::AcquireJobResponse* const response_;
  bool noted_idle_ = false;  // the store knows it asked and waits
};

Dispatcher::Dispatcher(storage::Store* store, int64_t lease_us, Clock* clock,
                       std::function<void(const v1::Job&)> on_leased)
    : store_(store),
      lease_us_(lease_us),
      clock_(clock),
      on_leased_(std::move(on_leased)) {
  thread_ = std::thread([this] { Loop(); });
}

Dispatcher::~Dispatcher() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
  absl::MutexLock lock(&mu_);
  for (auto* list : {&fresh_, &waiters_}) {
    for (AcquireReactor* r : *list)
      r->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "shutting down"));
    list->clear();
  }
}

grpc::ServerUnaryReactor* Dispatcher::Acquire(
    int64_t worker_id, uint32_t wait_ms, const absl::Status& auth,
    v1::AcquireJobResponse* response) {
  const uint32_t wait = wait_ms == 0 ? kDefaultWaitMs : wait_ms;
  auto* r = new AcquireReactor(
      this, worker_id,
      clock_->NowMicros() + int64_t{std::min(wait, kMaxWaitMs)} * 1000,
      response);
  absl::Status s = auth;
  if (s.ok()) s = PositiveId("worker_id", worker_id);
  if (s.ok() && wait_ms > kMaxWaitMs) {
    s = absl::InvalidArgumentError(absl::StrCat(
        "wait_ms must be in [0, ", kMaxWaitMs, "], got ", wait_ms));
  }
  if (!s.ok()) {
    r->Finish(ToGrpc(s));
    return r;
  }
  absl::MutexLock lock(&mu_);
  if (stop_) {
    r->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "shutting down"));
    return r;
  }
  fresh_.push_back(r);
  return r;
}

void Dispatcher::Cancel(AcquireReactor* r) {
  absl::MutexLock lock(&mu_);
  for (auto* list : {&fresh_, &waiters_}) {
    for (auto it = list->begin(); it != list->end(); ++it) {
      if (*it == r) {
        list->erase(it);
        r->Finish(grpc::Status::CANCELLED);
        return;
      }
    }
  }
}

void Dispatcher::Notify() {
  absl::MutexLock lock(&mu_);
  dirty_ = true;
}

bool Dispatcher::TryLease(AcquireReactor* r) {
  absl::StatusOr<std::optional<storage::Assignment>> a =
      store_->queue().AcquireJob(r->worker_id_, lease_us_);
  if (!a.ok()) {
    r->Finish(ToGrpc(a.status()));
    return true;
  }
  if (!a->has_value()) return false;
  *r->response_->mutable_job() = (*a)->job;
  *r->response_->mutable_lease() = (*a)->lease;
  on_leased_((*a)->job);
  r->Finish(grpc::Status::OK);
  return true;
}

void Dispatcher::Loop() {
  while (true) {
    std::vector<AcquireReactor*> batch;
    {
      absl::MutexLock lock(&mu_);
      // Sleep until the nearest deadline, at most a second: a clock moved
      // by hand is seen within that, the system clock exactly.
      int64_t wait_us = 1'000'000;
      const int64_t now_us = clock_->NowMicros();
      for (AcquireReactor* r : waiters_)
        wait_us = std::min(wait_us, r->deadline_us_ - now_us);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return dirty_ || !fresh_.empty() || stop_;
      };
      mu_.AwaitWithTimeout(absl::Condition(&ready),
                           absl::Microseconds(std::max<int64_t>(wait_us, 0)));
      if (stop_) return;
      const bool dirty = dirty_;
      dirty_ = false;
      const int64_t now = clock_->NowMicros();
      for (auto it = waiters_.begin(); it != waiters_.end();) {
        if (dirty || (*it)->deadline_us_ <= now) {
          batch.push_back(*it);
          it = waiters_.erase(it);
        } else {
          ++it;
        }
      }
      batch.insert(batch.end(), fresh_.begin(), fresh_.end());
      fresh_.clear();
    }
    // Outside the lock: store calls, and Finish.
    const int64_t now = clock_->NowMicros();
    storage::Store::PriorityScope first(store_);  // ahead of the report writer
    std::vector<AcquireReactor*> keep;
    for (AcquireReactor* r : batch) {
      if (TryLease(r)) continue;
      if (!r->noted_idle_) {
        // Once per long poll (mixcal-worker's wait 10 s at most): an idle
        // worker's sign of life, for `mixcal workers` and the launcher's
        // idle count.
        r->noted_idle_ = true;
        store_->queue().NoteIdle(r->worker_id_).IgnoreError();
      }
      if (r->deadline_us_ <= now) {
        r->Finish(grpc::Status::OK);  // no job this time
      } else {
        keep.push_back(r);
      }
    }
    absl::MutexLock lock(&mu_);
    waiters_.insert(waiters_.begin(), keep.begin(),
                    keep.end());  // keep FIFO order
  }
}

}  // namespace mixcal::server
