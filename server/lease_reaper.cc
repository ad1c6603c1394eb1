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
      clock_(clock),
      lease_us_(lease_us),
      on_expired_(std::move(on_expired)),
      thread_(period, [this] { ReapOnce(); }) {}

LeaseReaper::~LeaseReaper() { Stop(); }

void LeaseReaper::Start() { thread_.Start(); }

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
  if (storage::IsStorageFull(r.status())) {
    full_ = true;
    std::fprintf(stderr,
                 "mixcal-coordinator: %s; leases are kept until it can be "
                 "written again\n",
                 std::string(r.status().message()).c_str());
    return;
  }
  if (r.ok() && (!r->requeued.empty() || !r->failed.empty())) on_expired_(*r);
}

void LeaseReaper::Stop() { thread_.Stop(); }

}  // namespace mixcal::server
