#include "worker/heartbeater.h"

#include "absl/strings/str_cat.h"
#include "worker/calls.h"

namespace mixcal::worker {

Heartbeater::Heartbeater(const Options& options, JobControl* job)
    : o_(options), job_(job) {
  auto stop = [this] {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (in_flight_ != nullptr) in_flight_->TryCancel();
  };
  stop_subscription_ = o_.stop->OnStop(stop);
  thread_ = std::thread([this] { Loop(); });
}

Heartbeater::~Heartbeater() { Stop(); }

void Heartbeater::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (in_flight_ != nullptr) in_flight_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
}

int Heartbeater::answered() const {
  absl::MutexLock lock(&mu_);
  return answered_;
}

void Heartbeater::Loop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), o_.interval);
      if (stopping_) return;
    }
    Beat();
  }
}

void Heartbeater::Beat() {
  v1::HeartbeatRequest req;
  req.set_worker_id(o_.worker_id);
  *req.add_leases() = job_->lease();
  v1::HeartbeatResponse resp;
  grpc::ClientContext ctx;
  PrepareCall(ctx, o_.token, o_.call_timeout);
  // Sent the moment the channel connects again after a coordinator restart,
  // not refused at once while it reconnects.
  ctx.set_wait_for_ready(true);
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    in_flight_ = &ctx;
  }
  const grpc::Status s = o_.stub->Heartbeat(&ctx, req, &resp);
  {
    absl::MutexLock lock(&mu_);
    in_flight_ = nullptr;
    if (s.ok()) ++answered_;
  }
  if (!s.ok()) {
    if (s.error_code() == grpc::StatusCode::NOT_FOUND) job_->MarkLost();
    return;  // unreachable: training goes on; the lease may still hold
  }
  if (resp.cancelled_size() > 0) {
    if (job_->MarkCancelled())
      Log(absl::StrCat("job ", job_->job_id(), " cancelled; stopping"));
  } else if (resp.lost_size() > 0) {
    if (job_->MarkLost())
      Log(absl::StrCat("job ", job_->job_id(), ": lease lost; stopping"));
  }
}

}  // namespace mixcal::worker
