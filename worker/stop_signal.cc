#include "worker/stop_signal.h"

#include <utility>

namespace mixcal::worker {

StopSignal::Subscription::Subscription(Subscription&& other) noexcept
    : signal_(std::exchange(other.signal_, nullptr)),
      id_(std::exchange(other.id_, 0)) {}

StopSignal::Subscription& StopSignal::Subscription::operator=(
    Subscription&& other) noexcept {
  if (this != &other) {
    if (signal_ != nullptr) signal_->Remove(id_);
    signal_ = std::exchange(other.signal_, nullptr);
    id_ = std::exchange(other.id_, 0);
  }
  return *this;
}

StopSignal::Subscription::~Subscription() {
  if (signal_ != nullptr) signal_->Remove(id_);
}

void StopSignal::Stop() {
  absl::MutexLock lock(&mu_);
  if (stopped_) return;
  stopped_ = true;  // wakes WaitFor; OnStop from now on runs at once
  // Callbacks run without the lock, so that they may take their own locks
  // while a thread holding one of those reads stopped(). A callback removed
  // meanwhile is skipped; one running is waited for by Remove.
  uint64_t after = 0;
  while (true) {
    auto it = callbacks_.upper_bound(after);
    if (it == callbacks_.end()) break;
    after = it->first;
    std::function<void()> callback = std::move(it->second);
    callbacks_.erase(it);
    running_ = after;
    mu_.Unlock();
    callback();
    mu_.Lock();
    running_ = 0;
  }
}

bool StopSignal::stopped() const {
  absl::MutexLock lock(&mu_);
  return stopped_;
}

bool StopSignal::WaitFor(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&stopped_), timeout);
  return stopped_;
}

StopSignal::Subscription StopSignal::OnStop(std::function<void()> callback) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopped_) {
      const uint64_t id = next_id_++;
      callbacks_.emplace(id, std::move(callback));
      return Subscription(this, id);
    }
  }
  callback();
  return Subscription();
}

void StopSignal::Remove(uint64_t id) {
  absl::MutexLock lock(&mu_);
  callbacks_.erase(id);
  auto not_running = [this, id]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return running_ != id;
  };
  mu_.Await(absl::Condition(&not_running));
}

}  // namespace mixcal::worker
