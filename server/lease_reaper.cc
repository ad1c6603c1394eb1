#include "server/lease_reaper.h"

#include <cstdio>
#include <string>
#include <utility>

namespace mixcal::server {

LeaseReaper::LeaseReaper(
    storage::Store* store, absl::Duration period, Clock* clock,
    int64_t lease_us,
    std::function<void(const storage::ExpireResult&)> on_expired)
    : store_(store),
      period_(period),
      clock_(clock),
      lease_us_(lease_us),
      on_expired_(std::move(on_expired)) {}

LeaseReaper::~LeaseReaper() { Stop(); }

void LeaseReaper::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void LeaseReaper::ReapOnce() {
  if (full_) {
    absl::StatusOr<int64_t> extended =
        store_->ExtendRunningLeases(clock_->NowMicros() + lease_us_);
    if (!extended.ok()) return;  // still no space (or worse): expire nothing
    full_ = false;
    std::fprintf(stderr,
                 "mixcal-coordinator: the database can be written again; "
                 "%lld running job(s) got a fresh lease of %.1f s\n",
                 static_cast<long long>(*extended), lease_us_ / 1e6);
  }
  absl::StatusOr<storage::ExpireResult> r = store_->ExpireLeases();
  if (absl::IsResourceExhausted(r.status())) {
    full_ = true;
    std::fprintf(stderr,
                 "mixcal-coordinator: %s; leases are kept until it can be "
                 "written again\n",
                 std::string(r.status().message()).c_str());
    return;
  }
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
