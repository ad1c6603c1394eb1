#include "server/autoscaler.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
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

absl::Status Autoscaler::Event(const std::string& kind,
                               const std::string& message) {
  Log(message);
  return store_->launches().AddLauncherEvent(kind, message);
}

absl::Status Autoscaler::Ended(const storage::Launch& launch) {
  const std::string engine = launcher_->engine();
  const std::string& id = launch.scheduler_id;
  MIXCAL_RETURN_IF_ERROR(store_->launches().EndLaunch(engine, id));
  pending_reason_.erase(id);
  const bool cancelled_here = cancelled_.erase(id) > 0;
  MIXCAL_ASSIGN_OR_RETURN(
      int64_t registered,
      store_->launches().WorkersFrom(launcher_->WorkerPlacement(id), 0));
  if (registered > 0) {
    failures_ = 0;
    Log(absl::StrCat(engine, " job ", id, " has ended (", registered,
                     " worker(s) registered from it)"));
    return absl::OkStatus();
  }
  const LaunchEnd end = launcher_->DescribeEnd(id);
  if (cancelled_here || end.cancelled) {
    Log(absl::StrCat(engine, " job ", id, " was cancelled before it ran: ",
                     end.summary));
    return absl::OkStatus();
  }
  return Failed(absl::StrCat(engine, " job ", id, " (", launch.tasks,
                            " task(s)) ended with no worker registered: ",
                            end.summary));
}

absl::Status Autoscaler::Failed(std::string message) {
  ++failures_;
  if (failures_ >= o_.max_failures) {
    stopped_ = true;
    MIXCAL_RETURN_IF_ERROR(Event("launch_failed", message));
    return Event(
        "launcher_stopped",
        absl::StrCat(failures_, " launches in a row failed: the launcher "
                     "submits nothing more; fix the cause (the events above, "
                     "the tasks' output) and restart the coordinator"));
  }
  absl::Duration wait = o_.period;
  for (int i = 0; i < failures_ && wait < o_.max_backoff; ++i) wait *= 2;
  wait = std::min(wait, o_.max_backoff);
  next_submit_us_ = clock_->NowMicros() + absl::ToInt64Microseconds(wait);
  absl::StrAppend(&message, "; next launch in ", absl::FormatDuration(wait),
                  " at the earliest (", failures_, " of ", o_.max_failures,
                  " failures in a row before the launcher stops)");
  return Event("launch_failed", message);
}

absl::Status Autoscaler::Tick() {
  const std::string engine = launcher_->engine();
  const int64_t now = clock_->NowMicros();
  const int64_t heard_after = now - o_.idle_window_us;
  MIXCAL_ASSIGN_OR_RETURN(std::vector<storage::Launch> launches,
                          store_->launches().ActiveLaunches(engine));
  std::vector<std::string> ids;
  for (const storage::Launch& l : launches) ids.push_back(l.scheduler_id);
  MIXCAL_ASSIGN_OR_RETURN(auto counts, launcher_->Query(ids));
  int pending = 0, running = 0, starting = 0;
  // A launch whose tasks are all ending and none of whose workers ever
  // registered may be about to count as a failure: no new launch until the
  // scheduler has let it go and its end is judged (else a failing script
  // is submitted again before the back-off knows it failed).
  bool failure_unjudged = false;
  for (const storage::Launch& l : launches) {
    auto it = counts.find(l.scheduler_id);
    if (it == counts.end()) {  // every task of it has ended
      MIXCAL_RETURN_IF_ERROR(Ended(l));
      continue;
    }
    const TaskCounts& c = it->second;
    if (c.ending > 0 && c.pending == 0 && c.running == 0) {
      MIXCAL_ASSIGN_OR_RETURN(
          int64_t ever, store_->launches().WorkersFrom(
                            launcher_->WorkerPlacement(l.scheduler_id), 0));
      if (ever == 0) failure_unjudged = true;
    }
    pending += c.pending;
    running += c.running;
    if (c.running > 0) {
      // Running tasks whose worker has not registered yet will take a job
      // soon (a slow start: CUDA, a conda environment): counted as coming.
      MIXCAL_ASSIGN_OR_RETURN(
          int64_t up, store_->launches().WorkersFrom(
                          launcher_->WorkerPlacement(l.scheduler_id),
                          heard_after));
      starting += std::max<int64_t>(0, c.running - up);
    }
    // Why tasks wait, once per launch and reason ("None": not yet judged).
    if (c.pending > 0 && c.pending_reason != "None" &&
        pending_reason_[l.scheduler_id] != c.pending_reason) {
      pending_reason_[l.scheduler_id] = c.pending_reason;
      MIXCAL_RETURN_IF_ERROR(Event(
          "launch_pending",
          absl::StrCat(engine, " job ", l.scheduler_id, ": ", c.pending,
                       " task(s) pending, reason ",
                       c.pending_reason.empty() ? "not given"
                                                : c.pending_reason)));
    }
  }
  MIXCAL_ASSIGN_OR_RETURN(
      storage::LaunchDemand demand,
      store_->launches().GetLaunchDemand(o_.device_class, heard_after));
  if (demand.queued_jobs == 0) {
    if (pending == 0) return absl::OkStatus();
    for (const auto& [id, c] : counts) {
      if (c.pending == 0) continue;
      MIXCAL_RETURN_IF_ERROR(launcher_->CancelPending(id));
      cancelled_.insert(id);
      Log(absl::StrCat("no job queued: cancelled ", c.pending,
                       " pending task(s) of ", engine, " job ", id));
    }
    return absl::OkStatus();
  }
  if (stopped_ || failure_unjudged || now < next_submit_us_)
    return absl::OkStatus();
  const int64_t uncovered =
      demand.queued_jobs - demand.idle_workers - pending - starting;
  const int64_t room = o_.max_workers - pending - running;
  const int want = static_cast<int>(std::min(uncovered, room));
  if (want <= 0) return absl::OkStatus();
  absl::StatusOr<std::string> submitted =
      launcher_->Submit(o_.device_class, want);
  if (!submitted.ok()) {
    return Failed(absl::StrCat("submitting ", want, " task(s) failed: ",
                               submitted.status().message()));
  }
  const std::string& id = *submitted;
  storage::Launch launch;
  launch.scheduler_id = id;
  launch.device_class = o_.device_class;
  launch.tasks = want;
  MIXCAL_RETURN_IF_ERROR(store_->launches().RecordLaunch(engine, launch));
  return Event(
      "launched",
      absl::StrCat(engine, " job ", id, " with ", want, " task(s): ",
                   demand.queued_jobs, " ", o_.device_class,
                   " job(s) queued, ", demand.idle_workers, " idle worker(s), ",
                   pending, " pending and ", starting,
                   " starting task(s), ", running, " running"));
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
