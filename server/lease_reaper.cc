#include "server/lease_reaper.h"

#include <cstdio>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace mixcal::server {

LeaseReaper::LeaseReaper(storage::Store* store, WatchHub* hub,
                         Dispatcher* dispatcher, absl::Duration period,
                         Clock* clock, int64_t lease_us)
    : store_(store),
      hub_(hub),
      dispatcher_(dispatcher),
      clock_(clock),
      lease_us_(lease_us),
      thread_(period, [this] { ReapOnce().IgnoreError(); }) {}  // logged

LeaseReaper::~LeaseReaper() { Stop(); }

void LeaseReaper::Start() { thread_.Start(); }

absl::Status LeaseReaper::ReapOnce() {
  absl::Status s = Pass();
  if (!s.ok() && !storage::IsStorageFull(s)) {
    Log(absl::StrCat("expiring leases failed (", s.message(),
                     "); trying again"),
        /*repeats=*/true);
  }
  return s;
}

absl::Status LeaseReaper::Pass() {
  // A heartbeat refused for lack of space since the last pass: its worker
  // lives, but its lease was not extended. Leases get a fresh term (once
  // the database takes it) before any is judged.
  const int64_t refused = store_->queue().last_heartbeat_refused_full_us();
  if (refused > refused_seen_us_) {
    refused_seen_us_ = refused;
    full_ = true;
  }
  if (full_) {
    absl::StatusOr<int64_t> extended =
        store_->queue().ExtendRunningLeases(clock_->NowMicros() + lease_us_);
    // Still no space (or worse): expire nothing.
    if (!extended.ok()) return extended.status();
    full_ = false;
    if (*extended > 0) {
      Log(absl::StrCat("the database can be written again; ", *extended,
                       " running job(s) got a fresh lease of ",
                       lease_us_ / 1e6, " s"),
          /*repeats=*/true);
    }
  }
  absl::StatusOr<storage::ExpireResult> r = store_->queue().ExpireLeases();
  if (storage::IsStorageFull(r.status())) {
    full_ = true;
    Log(absl::StrCat(r.status().message(),
                     "; leases are kept until it can be written again"),
        /*repeats=*/false);
    return r.status();
  }
  if (!r.ok()) return r.status();
  if (!r->requeued.empty()) dispatcher_->Notify();
  for (int64_t id : r->requeued) hub_->PublishJobId(id);
  for (int64_t id : r->failed) hub_->PublishJobId(id);
  return absl::OkStatus();
}

void LeaseReaper::Log(const std::string& line, bool repeats) {
  // A failing pass repeats every period: a line every 10 s says so.
  const absl::Time now = absl::Now();
  if (repeats && now - last_logged_ < absl::Seconds(10)) {
    ++left_out_;
    return;
  }
  if (repeats) last_logged_ = now;
  if (left_out_ > 0) {
    std::fprintf(stderr, "mixcal-coordinator: %s (%lld lines left out)\n",
                 line.c_str(), static_cast<long long>(left_out_));
  } else {
    std::fprintf(stderr, "mixcal-coordinator: %s\n", line.c_str());
  }
  left_out_ = 0;
}

void LeaseReaper::Stop() { thread_.Stop(); }

}  // namespace mixcal::server
