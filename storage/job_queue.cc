#include "storage/job_queue.h"

#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/status_macros.h"
#include "base/utf8.h"
#include "storage/internal/connection.h"
#include "storage/internal/fence.h"
#include "storage/store.h"
#include "storage/internal/job_states.h"
#include "storage/internal/lease_token.h"
#include "storage/internal/records.h"
#include "storage/internal/rows.h"
#include "storage/internal/sqlite.h"

namespace mixcal::storage {
namespace {

// The worker was heard from at `now`: active again, whatever it was.
absl::Status TouchWorker(Connection& c, int64_t worker_id, int64_t now) {
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement touch,
      c.db()->Cached(
          "UPDATE workers SET last_heartbeat = ?, state = " WORKER_IS_ACTIVE
          ", state_reason = '' WHERE id = ?"));
  return touch->Bind(1, now).Bind(2, worker_id).Run();
}

}  // namespace

absl::StatusOr<int64_t> JobQueue::RegisterWorker(const v1::WorkerInfo& info,
                                                 std::string* key) {
  if (info.host().empty()) {
    return absl::InvalidArgumentError("host must not be empty");
  }
  MIXCAL_RETURN_IF_ERROR(CheckText("host", info.host(), 256));
  MIXCAL_RETURN_IF_ERROR(CheckText("name", info.name(), 256));
  MIXCAL_RETURN_IF_ERROR(CheckText("device_name", info.device_name(), 256));
  MIXCAL_RETURN_IF_ERROR(CheckText("placement", info.placement(), 256));
  for (int i = 0; i < info.capabilities_size(); ++i) {
    MIXCAL_RETURN_IF_ERROR(CheckText(absl::StrCat("capabilities[", i, "]"),
                                     info.capabilities(i), 64));
  }
  const std::string& d = info.device();
  const bool cuda_n = d.rfind("cuda:", 0) == 0 && d.size() > 5 &&
                      d.size() <= 8 &&
                      std::all_of(d.begin() + 5, d.end(),
                                  [](char c) { return c >= '0' && c <= '9'; });
  if (d != "cpu" && d != "cuda" && !cuda_n) {
    return absl::InvalidArgumentError(absl::StrCat(
        "device must be cpu, cuda or cuda:N, got \"", Echo(d), "\""));
  }
  if (info.name().size() > 256 || info.device_name().size() > 256 ||
      info.capabilities_size() > 64) {
    return absl::InvalidArgumentError(
        "name and device_name must be at most 256 characters, capabilities at "
        "most 64");
  }
  RequestLock lock(c_);
  const int64_t now = c_.clock()->NowMicros();
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement s,
      c_.db()->Cached(
          "INSERT INTO workers (name, host, device, device_name, memory_bytes, "
          "capabilities, state, registered_at, last_heartbeat, placement, "
          "worker_key) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)"));
  const std::string worker_key = NewLeaseToken();
  std::vector<std::string> caps(info.capabilities().begin(),
                                info.capabilities().end());
  MIXCAL_RETURN_IF_ERROR(s->Bind(1, info.name())
                             .Bind(2, info.host())
                             .Bind(3, d)
                             .Bind(4, info.device_name())
                             .Bind(5, info.memory_bytes())
                             .Bind(6, absl::StrJoin(caps, ","))
                             .Bind(7, now)
                             .Bind(8, now)
                             .Bind(9, info.placement())
                             .Bind(10, worker_key)
                             .Run());
  const int64_t id = c_.db()->LastInsertId();
  if (key != nullptr) *key = worker_key;
  MIXCAL_RETURN_IF_ERROR(
      AddEvent(c_, 0, 0, "worker_registered",
               absl::StrCat("worker ", id, " ", info.host(), " ", d)));
  return id;
}

absl::Status JobQueue::LeaveRotation(int64_t worker_id, bool failing,
                                     absl::string_view reason,
                                     absl::string_view key) {
  MIXCAL_RETURN_IF_ERROR(CheckText("reason", reason, 4096));
  RequestLock lock(c_);
  Transaction txn(c_.db());
  MIXCAL_RETURN_IF_ERROR(txn.Begin());
  {
    MIXCAL_ASSIGN_OR_RETURN(
        CachedStatement k,
        c_.db()->Cached("SELECT worker_key FROM workers WHERE id = ?"));
    k->Bind(1, worker_id);
    MIXCAL_ASSIGN_OR_RETURN(bool found, k->Step());
    if (!found) {
      return absl::NotFoundError(
          absl::StrCat("worker_id ", worker_id, " is not registered"));
    }
    const std::string stored = k->Text(0);
    k->Reset();
    // Workers registered before keys existed have none.
    if (!stored.empty() && !SameToken(stored, std::string(key))) {
      return absl::PermissionDeniedError(absl::StrCat(
          "worker_key is not worker ", worker_id,
          "'s: a worker takes only itself out of rotation"));
    }
  }
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement s,
      c_.db()->Cached(
          "UPDATE workers SET state = ?, state_reason = ? WHERE id = ?"));
  const v1::WorkerState state =
      failing ? v1::WORKER_OUT_OF_ROTATION : v1::WORKER_STOPPED;
  MIXCAL_RETURN_IF_ERROR(s->Bind(1, static_cast<int>(state))
                             .Bind(2, reason)
                             .Bind(3, worker_id)
                             .Run());
  if (c_.db()->Changes() == 0) {
    return absl::NotFoundError(
        absl::StrCat("worker_id ", worker_id, " is not registered"));
  }
  MIXCAL_RETURN_IF_ERROR(
      AddEvent(c_, 0, 0, failing ? "worker_out_of_rotation" : "worker_stopped",
               absl::StrCat("worker ", worker_id, ": ", reason)));
  return txn.Commit();
}

absl::StatusOr<std::vector<v1::WorkerInfo>> JobQueue::ListWorkers() {
  RequestLock lock(c_);
  MIXCAL_ASSIGN_OR_RETURN(
      Statement s,
      c_.db()->Prepare(
          "SELECT w.id, w.name, w.host, w.device, w.device_name, "
          "w.memory_bytes, "
          "w.capabilities, w.state, w.registered_at, w.last_heartbeat, "
          "(SELECT MAX(j.id) FROM jobs j WHERE j.worker_id = w.id AND j.state "
          "= 2), w.state_reason, w.placement "
          "FROM workers w ORDER BY w.id"));
  std::vector<v1::WorkerInfo> out;
  while (true) {
    MIXCAL_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    v1::WorkerInfo w;
    w.set_id(s.Int(0));
    w.set_name(s.Text(1));
    w.set_host(s.Text(2));
    w.set_device(s.Text(3));
    w.set_device_name(s.Text(4));
    w.set_memory_bytes(static_cast<uint64_t>(s.Int(5)));
    for (absl::string_view c :
         absl::StrSplit(s.Text(6), ',', absl::SkipEmpty()))
      w.add_capabilities(std::string(c));
    w.set_state(static_cast<v1::WorkerState>(s.Int(7)));
    w.set_registered_at_us(s.Int(8));
    w.set_last_heartbeat_us(s.Int(9));
    w.set_current_job_id(s.Int(10));
    w.set_state_reason(s.Text(11));
    w.set_placement(s.Text(12));
    out.push_back(std::move(w));
  }
  return out;
}

absl::StatusOr<std::optional<Assignment>> JobQueue::AcquireJob(
    int64_t worker_id, int64_t lease_us) {
  RequestLock lock(c_);
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement w,
      c_.db()->Cached("SELECT device FROM workers WHERE id = ?"));
  w->Bind(1, worker_id);
  MIXCAL_ASSIGN_OR_RETURN(bool known, w->Step());
  if (!known)
    return absl::NotFoundError(
        absl::StrCat("no worker ", worker_id, ": register first"));
  const std::string device_class = WorkerDeviceClass(w->Text(0));

  Transaction txn(c_.db());
  MIXCAL_RETURN_IF_ERROR(txn.Begin());
  // The sweep whose turn it is: highest priority, then served least recently.
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement pick_sweep,
      c_.db()->Cached(
          "SELECT s.id FROM sweeps s WHERE s.state = " SWEEP_IS_ACTIVE
          " AND EXISTS ("
          "SELECT 1 FROM jobs j WHERE j.sweep_id = s.id AND j.state "
          "= " JOB_QUEUED " "
          "AND j.device IN (?1, 'any')) ORDER BY s.priority DESC, s.turn, s.id "
          "LIMIT 1"));
  pick_sweep->Bind(1, device_class);
  MIXCAL_ASSIGN_OR_RETURN(bool any, pick_sweep->Step());
  if (!any) return std::optional<Assignment>();
  const int64_t sweep_id = pick_sweep->Int(0);
  // The oldest queued job of that sweep this worker can run.
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement pick_job,
      c_.db()->Cached("SELECT id FROM jobs WHERE sweep_id = ? "
                      "AND state = " JOB_QUEUED " AND device IN (?, 'any') "
                      "ORDER BY id LIMIT 1"));
  pick_job->Bind(1, sweep_id).Bind(2, device_class);
  MIXCAL_RETURN_IF_ERROR(pick_job->Step().status());
  const int64_t job_id = pick_job->Int(0);
  const int64_t now = c_.clock()->NowMicros();
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement lease,
      c_.db()->Cached(
          "UPDATE jobs SET state = " JOB_RUNNING
          ", attempt = attempt + 1, worker_id = ?, error = '', "
          "lease_expires_at = ?, started_at = CASE WHEN started_at = 0 THEN ? "
          "ELSE started_at END, lease_token = ? WHERE id = ?"));
  const std::string token = NewLeaseToken();
  MIXCAL_RETURN_IF_ERROR(lease->Bind(1, worker_id)
                             .Bind(2, now + lease_us)
                             .Bind(3, now)
                             .Bind(4, token)
                             .Bind(5, job_id)
                             .Run());
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement turn,
      c_.db()->Cached("UPDATE sweeps SET turn = (SELECT "
                      "COALESCE(MAX(turn), 0) + 1 FROM sweeps) "
                      "WHERE id = ?"));
  MIXCAL_RETURN_IF_ERROR(turn->Bind(1, sweep_id).Run());
  MIXCAL_RETURN_IF_ERROR(TouchWorker(c_, worker_id, now));
  Assignment a;
  MIXCAL_ASSIGN_OR_RETURN(a.job, ReadJob(c_, job_id));
  a.lease.set_job_id(job_id);
  a.lease.set_attempt(a.job.attempt());
  a.lease.set_token(token);
  MIXCAL_RETURN_IF_ERROR(
      AddEvent(c_, sweep_id, job_id, "leased",
               absl::StrCat("worker ", worker_id, ", lease ", a.job.attempt(),
                            ": attempt ",
                            a.job.attempt() - a.job.handbacks(), " of ",
                            a.job.max_attempts(),
                            a.job.handbacks() > 0
                                ? absl::StrCat(" (", a.job.handbacks(),
                                               " lease(s) handed back, not "
                                               "counted)")
                                : "")));
  MIXCAL_RETURN_IF_ERROR(txn.Commit());
  return std::optional<Assignment>(std::move(a));
}

absl::Status JobQueue::NoteIdle(int64_t worker_id) {
  RequestLock lock(c_);
  // Active or lost (it is back) only: a worker that left (stopped, out of
  // rotation) stays so, even if a poll of its raced with its leaving.
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement touch,
      c_.db()->Cached("UPDATE workers SET last_heartbeat = ?, state = " WORKER_IS_ACTIVE
                      ", state_reason = '' WHERE id = ? AND state IN (" WORKER_IS_ACTIVE
                      ", " WORKER_IS_LOST ")"));
  return touch->Bind(1, c_.clock()->NowMicros()).Bind(2, worker_id).Run();
}

absl::StatusOr<HeartbeatResult> JobQueue::Heartbeat(
    int64_t worker_id, const std::vector<v1::Lease>& leases, int64_t lease_us) {
  absl::StatusOr<HeartbeatResult> r =
      HeartbeatLocked(worker_id, leases, lease_us);
  if (IsStorageFull(r.status())) {
    heartbeat_full_us_.store(c_.clock()->NowMicros(),
                             std::memory_order_relaxed);
  }
  return r;
}

absl::StatusOr<HeartbeatResult> JobQueue::HeartbeatLocked(
    int64_t worker_id, const std::vector<v1::Lease>& leases, int64_t lease_us) {
  // A worker holds one lease per slot; a heartbeat with more would hold the
  // store for every other caller while it is checked.
  if (leases.size() > kMaxLeasesPerHeartbeat) {
    return absl::InvalidArgumentError(absl::StrCat("leases must hold at most ",
                                                   kMaxLeasesPerHeartbeat,
                                                   ", got ", leases.size()));
  }
  RequestLock lock(c_);
  Transaction txn(c_.db());
  MIXCAL_RETURN_IF_ERROR(txn.Begin());
  const int64_t now = c_.clock()->NowMicros();
  MIXCAL_RETURN_IF_ERROR(TouchWorker(c_, worker_id, now));
  if (c_.db()->Changes() == 0) {
    return absl::NotFoundError(
        absl::StrCat("no worker ", worker_id, ": register again"));
  }
  HeartbeatResult r;
  for (const v1::Lease& l : leases) {
    // Only the worker that holds the lease (its id and token) keeps it.
    v1::JobState state = v1::JOB_STATE_UNSPECIFIED;
    const absl::Status current = CheckLease(c_, l, &state, worker_id);
    if (current.ok()) {
      MIXCAL_ASSIGN_OR_RETURN(
          CachedStatement u,
          c_.db()->Cached("UPDATE jobs SET lease_expires_at = ? WHERE id = ?"));
      MIXCAL_RETURN_IF_ERROR(
          u->Bind(1, now + lease_us).Bind(2, l.job_id()).Run());
      r.extended.push_back(l);
    } else if (state == v1::CANCELLED) {
      r.cancelled.push_back(l);
    } else if (absl::IsFailedPrecondition(current) ||
               absl::IsNotFound(current) || absl::IsPermissionDenied(current)) {
      r.lost.push_back(l);
    } else {
      return current;  // the file, not the lease
    }
  }
  MIXCAL_RETURN_IF_ERROR(txn.Commit());
  return r;
}

absl::StatusOr<int64_t> JobQueue::ExtendRunningLeases(int64_t until_us) {
  RequestLock lock(c_);
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement s,
      c_.db()->Cached(
          "UPDATE jobs SET lease_expires_at = ? WHERE state = " JOB_RUNNING
          " AND lease_expires_at < ?"));
  MIXCAL_RETURN_IF_ERROR(s->Bind(1, until_us).Bind(2, until_us).Run());
  return static_cast<int64_t>(c_.db()->Changes());
}

absl::StatusOr<ExpireResult> JobQueue::ExpireLeases() {
  RequestLock lock(c_);
  Transaction txn(c_.db());
  MIXCAL_RETURN_IF_ERROR(txn.Begin());
  const int64_t now = c_.clock()->NowMicros();
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement s,
      c_.db()->Cached("SELECT id, sweep_id, attempt - handbacks, max_attempts, "
                      "COALESCE(worker_id, 0), attempt FROM jobs "
                      "WHERE state = " JOB_RUNNING
                      " AND lease_expires_at < ?"));
  s->Bind(1, now);
  struct Expired {
    // attempt: those counted (not handed back); lease: every one.
    int64_t id, sweep_id, attempt, max_attempts, worker_id, lease;
  };
  std::vector<Expired> expired;
  while (true) {
    MIXCAL_ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) break;
    expired.push_back(
        {s->Int(0), s->Int(1), s->Int(2), s->Int(3), s->Int(4), s->Int(5)});
  }
  ExpireResult r;
  for (const Expired& e : expired) {
    const bool give_up = e.attempt >= e.max_attempts;
    const std::string why = absl::StrCat(
        "lease ", e.lease, " expired: attempt ", e.attempt, " of ",
        e.max_attempts, ", worker ", e.worker_id, " stopped heartbeating");
    MIXCAL_ASSIGN_OR_RETURN(
        CachedStatement u,
        c_.db()->Cached("UPDATE jobs SET state = ?, worker_id = NULL, "
                        "lease_expires_at = 0, "
                        "error = ?, finished_at = ? WHERE id = ?"));
    MIXCAL_RETURN_IF_ERROR(
        u->Bind(1, static_cast<int>(give_up ? v1::FAILED : v1::QUEUED))
            .Bind(2, give_up ? why : std::string())
            .Bind(3, give_up ? now : 0)
            .Bind(4, e.id)
            .Run());
    MIXCAL_ASSIGN_OR_RETURN(
        CachedStatement w,
        c_.db()->Cached("UPDATE workers SET state = " WORKER_IS_LOST
                        " WHERE id = ?"));
    MIXCAL_RETURN_IF_ERROR(w->Bind(1, e.worker_id).Run());
    MIXCAL_RETURN_IF_ERROR(
        AddEvent(c_, e.sweep_id, e.id, give_up ? "failed" : "requeued", why));
    MIXCAL_RETURN_IF_ERROR(UpdateSweepState(c_, e.sweep_id));
    (give_up ? r.failed : r.requeued).push_back(e.id);
  }
  MIXCAL_RETURN_IF_ERROR(txn.Commit());
  return r;
}

}  // namespace mixcal::storage
