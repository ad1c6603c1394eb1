#include "base/periodic.h"

#include <utility>

namespace mixcal {

PeriodicThread::PeriodicThread(absl::Duration period,
                               std::function<void()> tick, bool tick_at_start)
    : period_(period), tick_(std::move(tick)), tick_at_start_(tick_at_start) {}

PeriodicThread::~PeriodicThread() { Stop(); }

void PeriodicThread::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void PeriodicThread::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void PeriodicThread::Loop() {
  auto stopped = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
  absl::MutexLock lock(&mu_);
  bool first = true;
  while (!stop_) {
    if (!first || !tick_at_start_) {
      mu_.AwaitWithTimeout(absl::Condition(&stopped), period_);
      if (stop_) break;
    }
    first = false;
    mu_.Unlock();
    tick_();
    mu_.Lock();
  }
}

}  // namespace mixcal
