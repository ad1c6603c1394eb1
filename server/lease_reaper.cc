#include "server/lease_reaper.h"

#include <utility>

namespace mixcal::server {

LeaseReaper::LeaseReaper(
    storage::Store* store, absl::Duration period,
    std::function<void(const storage::ExpireResult&)> on_expired)
    : store_(store), period_(period), on_expired_(std::move(on_expired)) {}

LeaseReaper::~LeaseReaper() { Stop(); }

void LeaseReaper::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void LeaseReaper::ReapOnce() {
  absl::StatusOr<storage::ExpireResult> r = store_->ExpireLeases();
  if (r.ok() && (!r->requeued.empty() || !r->failed.empty())) on_expired_(*r);
}

void LeaseReaper::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stop_) return;
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void LeaseReaper::Loop() {
  absl::MutexLock lock(&mu_);
  while (!stop_) {
    auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
    mu_.AwaitWithTimeout(absl::Condition(&stop), period_);
    if (stop_) break;
    mu_.Unlock();
    ReapOnce();
    mu_.Lock();
  }
}

}  // namespace mixcal::server
