#include "worker/job_control.h"

namespace mixcal::worker {

void JobControl::SetCancelFlag() {
  absl::MutexLock lock(&mu_);
  cancel_.store(true);
}

void JobControl::StopTraining() { SetCancelFlag(); }

bool JobControl::MarkCancelled() {
  const bool first = !cancelled_.exchange(true);
  SetCancelFlag();
  return first;
}

bool JobControl::MarkLost() {
  const bool first = !lost_.exchange(true);
  SetCancelFlag();
  return first;
}

bool JobControl::WaitForStopTraining(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto set = [this]() { return cancel_.load(); };
  mu_.AwaitWithTimeout(absl::Condition(&set), timeout);
  return cancel_.load();
}

}  // namespace mixcal::worker
