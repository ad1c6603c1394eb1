#include "server/autoscaler.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace mixcal::server {
namespace {

void Log(const std::string& s) {
  std::fprintf(stderr, "mixcal-coordinator: launcher: %s\n", s.c_str());
}

}  // namespace

Autoscaler::Autoscaler(storage::Store* store, Launcher* launcher, Clock* clock,
                       AutoscalerOptions options)
    : store_(store),
      launcher_(launcher),
      clock_(clock),
      o_(std::move(options)),
      thread_(o_.period, [this] { TickAndLog(); }, /*tick_at_start=*/true) {}

Autoscaler::~Autoscaler() { Stop(); }

absl::Status Autoscaler::Tick() {
  const std::string engine = launcher_->engine();
  MIXCAL_ASSIGN_OR_RETURN(std::vector<storage::Launch> launches,
                          store_->launches().ActiveLaunches(engine));
  std::vector<std::string> ids;
  for (const storage::Launch& l : launches) ids.push_back(l.scheduler_id);
  MIXCAL_ASSIGN_OR_RETURN(auto counts, launcher_->Query(ids));
  int pending = 0, running = 0;
  for (const storage::Launch& l : launches) {
    auto it = counts.find(l.scheduler_id);
    if (it == counts.end()) {  // every task of it has ended
      MIXCAL_RETURN_IF_ERROR(store_->launches().EndLaunch(engine, l.scheduler_id));
      Log(absl::StrCat(engine, " job ", l.scheduler_id, " has ended"));
      continue;
    }
    pending += it->second.pending;
    running += it->second.running;
  }
  MIXCAL_ASSIGN_OR_RETURN(
      storage::LaunchDemand demand,
      store_->launches().GetLaunchDemand(o_.device_class,
                              clock_->NowMicros() - o_.idle_window_us));
  if (demand.queued_jobs == 0) {
    if (pending == 0) return absl::OkStatus();
    for (const auto& [id, c] : counts) {
      if (c.pending == 0) continue;
      MIXCAL_RETURN_IF_ERROR(launcher_->CancelPending(id));
      Log(absl::StrCat("no job queued: cancelled ", c.pending,
                       " pending task(s) of ", engine, " job ", id));
    }
    return absl::OkStatus();
  }
  const int64_t uncovered =
      demand.queued_jobs - demand.idle_workers - pending;
  const int64_t room = o_.max_workers - pending - running;
  const int want = static_cast<int>(std::min(uncovered, room));
  if (want <= 0) return absl::OkStatus();
  MIXCAL_ASSIGN_OR_RETURN(std::string id,
                          launcher_->Submit(o_.device_class, want));
  storage::Launch launch;
  launch.scheduler_id = id;
  launch.device_class = o_.device_class;
  launch.tasks = want;
  MIXCAL_RETURN_IF_ERROR(store_->launches().RecordLaunch(engine, launch));
  Log(absl::StrCat(demand.queued_jobs, " ", o_.device_class,
                   " job(s) queued, ", demand.idle_workers, " idle worker(s), ",
                   pending, " pending and ", running, " running task(s): ",
                   engine, " job ", id, " with ", want, " task(s)"));
  return absl::OkStatus();
}

void Autoscaler::Start() { thread_.Start(); }

void Autoscaler::Stop() { thread_.Stop(); }

void Autoscaler::TickAndLog() {
  absl::Status s = Tick();
  if (!s.ok() && std::string(s.message()) != last_error_) {
    Log(std::string(s.message()));
  }
  last_error_ = s.ok() ? "" : std::string(s.message());
}

}  // namespace mixcal::server
