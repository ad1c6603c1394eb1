#include "storage/launches.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "storage/internal/connection.h"
#include "storage/internal/job_states.h"
#include "storage/internal/records.h"
#include "storage/internal/rows.h"

namespace mixcal::storage {

absl::StatusOr<LaunchDemand> Launches::GetLaunchDemand(
    const std::string& device_class, int64_t heard_after_us) {
  RequestLock lock(c_);
  LaunchDemand d;
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement q,
      c_.db()->Cached(
          "SELECT COUNT(*) FROM jobs WHERE state = " JOB_QUEUED
          " AND device IN (?, 'any') AND sweep_id IN (SELECT id FROM "
          "sweeps WHERE state = " SWEEP_IS_ACTIVE ")"));
  q->Bind(1, device_class);
  MIXCAL_RETURN_IF_ERROR(q->Step().status());
  d.queued_jobs = q->Int(0);
  q->Reset();
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement w,
      c_.db()->Cached(
          "SELECT device FROM workers w WHERE state = " WORKER_IS_ACTIVE
          " AND last_heartbeat > ? AND NOT EXISTS (SELECT 1 FROM jobs "
          "j WHERE j.worker_id = w.id AND j.state = " JOB_RUNNING ")"));
  w->Bind(1, heard_after_us);
  while (true) {
    MIXCAL_ASSIGN_OR_RETURN(bool row, w->Step());
    if (!row) break;
    if (WorkerDeviceClass(w->Text(0)) == device_class) ++d.idle_workers;
  }
  return d;
}

absl::Status Launches::RecordLaunch(const std::string& engine,
                                    const Launch& launch) {
  RequestLock lock(c_);
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement s,
      c_.db()->Cached(
          "INSERT INTO launches (engine, scheduler_id, device_class, "
          "tasks, submitted_at) VALUES (?, ?, ?, ?, ?)"));
  return s->Bind(1, engine)
      .Bind(2, launch.scheduler_id)
      .Bind(3, launch.device_class)
      .Bind(4, launch.tasks)
      .Bind(5, c_.clock()->NowMicros())
      .Run();
}

absl::StatusOr<std::vector<Launch>> Launches::ActiveLaunches(
    const std::string& engine) {
  RequestLock lock(c_);
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement s,
      c_.db()->Cached(
          "SELECT scheduler_id, device_class, tasks, submitted_at FROM "
          "launches WHERE engine = ? AND ended_at = 0 ORDER BY id"));
  s->Bind(1, engine);
  std::vector<Launch> out;
  while (true) {
    MIXCAL_ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) break;
    out.push_back(
        {s->Text(0), s->Text(1), static_cast<int>(s->Int(2)), s->Int(3)});
  }
  return out;
}

absl::Status Launches::EndLaunch(const std::string& engine,
                                 const std::string& scheduler_id) {
  RequestLock lock(c_);
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement s,
      c_.db()->Cached("UPDATE launches SET ended_at = ? WHERE engine = ? AND "
                      "scheduler_id = ? AND ended_at = 0"));
  return s->Bind(1, c_.clock()->NowMicros())
      .Bind(2, engine)
      .Bind(3, scheduler_id)
      .Run();
}

absl::StatusOr<int64_t> Launches::WorkersFrom(const std::string& placement,
                                              int64_t heard_after_us) {
  RequestLock lock(c_);
  // LIKE with the placement escaped: '_' and '%' in it are literal.
  std::string escaped;
  for (char ch : placement) {
    if (ch == '_' || ch == '%' || ch == '\\') escaped += '\\';
    escaped += ch;
  }
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement s,
      c_.db()->Cached(
          "SELECT COUNT(DISTINCT placement) FROM workers WHERE (placement = ?1 "
          "OR placement LIKE ?2 ESCAPE '\\' OR placement LIKE ?3 ESCAPE '\\') "
          "AND (?4 = 0 OR (state = " WORKER_IS_ACTIVE
          " AND last_heartbeat > ?4))"));
  s->Bind(1, placement)
      .Bind(2, escaped + "\\_%")
      .Bind(3, escaped + ",%")
      .Bind(4, heard_after_us);
  MIXCAL_RETURN_IF_ERROR(s->Step().status());
  return s->Int(0);
}

absl::Status Launches::AddLauncherEvent(const std::string& kind,
                                        const std::string& message) {
  RequestLock lock(c_);
  return AddEvent(c_, 0, 0, kind, message);
}

absl::StatusOr<std::vector<v1::Event>> Launches::LauncherEvents(int limit) {
  RequestLock lock(c_);
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement s,
      c_.db()->Cached(
          "SELECT id, time, kind, message FROM (SELECT id, time, kind, message "
          "FROM events WHERE sweep_id = 0 AND job_id = 0 AND kind LIKE "
          "'launch%' ORDER BY id DESC "
          "LIMIT ?) ORDER BY id"));
  s->Bind(1, limit);
  std::vector<v1::Event> out;
  while (true) {
    MIXCAL_ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) break;
    v1::Event e;
    e.set_id(s->Int(0));
    e.set_time_us(s->Int(1));
    e.set_kind(s->Text(2));
    e.set_message(s->Text(3));
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace mixcal::storage
