#include "storage/internal/records.h"

#include <cctype>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "storage/internal/job_states.h"
#include "storage/internal/rows.h"

namespace mixcal::storage {

absl::StatusOr<v1::Sweep> ReadSweep(Connection& c, int64_t sweep_id) {
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement s,
      c.db()->Cached(
          "SELECT id, name, spec, state, created_at, submitter FROM sweeps "
          "WHERE id = ?"));
  s->Bind(1, sweep_id);
  MIXCAL_ASSIGN_OR_RETURN(bool found, s->Step());
  if (!found) return absl::NotFoundError(absl::StrCat("no sweep ", sweep_id));
  v1::Sweep sweep;
  sweep.set_id(s->Int(0));
  sweep.set_name(s->Text(1));
  if (!sweep.mutable_spec()->ParseFromString(s->Blob(2))) {
    return absl::DataLossError(
        absl::StrCat("sweep ", sweep_id,
                     ": its stored spec cannot be parsed (the store "
                     "file is damaged)"));
  }
  sweep.set_state(static_cast<v1::SweepState>(s->Int(3)));
  sweep.set_created_at_us(s->Int(4));
  sweep.set_submitter(s->Text(5));
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement j,
      c.db()->Cached(
          "SELECT id, state, last_epoch FROM jobs WHERE sweep_id = ? "
          "ORDER BY id"));
  j->Bind(1, sweep_id);
  v1::JobCounts* counts = sweep.mutable_counts();
  while (true) {
    MIXCAL_ASSIGN_OR_RETURN(bool row, j->Step());
    if (!row) break;
    sweep.add_job_ids(j->Int(0));
    counts->set_epochs_done(counts->epochs_done() +
                            static_cast<uint64_t>(j->Int(2)));
    switch (static_cast<v1::JobState>(j->Int(1))) {
      case v1::QUEUED:
        counts->set_queued(counts->queued() + 1);
        break;
      case v1::RUNNING:
        counts->set_running(counts->running() + 1);
        break;
      case v1::SUCCEEDED:
        counts->set_succeeded(counts->succeeded() + 1);
        break;
      case v1::FAILED:
        counts->set_failed(counts->failed() + 1);
        break;
      case v1::CANCELLED:
        counts->set_cancelled(counts->cancelled() + 1);
        break;
      default:
        break;
    }
  }
  return sweep;
}

absl::StatusOr<v1::Job> ReadJob(Connection& c, int64_t job_id) {
  MIXCAL_ASSIGN_OR_RETURN(CachedStatement s, c.db()->Cached(absl::StrCat(
                                                 "SELECT ", kJobColumns,
                                                 " FROM jobs WHERE id = ?")));
  s->Bind(1, job_id);
  MIXCAL_ASSIGN_OR_RETURN(bool found, s->Step());
  if (!found) return absl::NotFoundError(absl::StrCat("no job ", job_id));
  return JobFromRow(*s);
}

absl::Status AddEvent(Connection& c, int64_t sweep_id, int64_t job_id,
                      const std::string& kind, const std::string& message) {
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement s,
      c.db()->Cached(
          "INSERT INTO events (time, sweep_id, job_id, kind, message) "
          "VALUES (?, ?, ?, ?, ?)"));
  return s->Bind(1, c.clock()->NowMicros())
      .Bind(2, sweep_id)
      .Bind(3, job_id)
      .Bind(4, kind)
      .Bind(5, message)
      .Run();
}

absl::Status UpdateSweepState(Connection& c, int64_t sweep_id) {
  {
    // Usually the sweep is active and stays so: one index probe, not a
    // count over all its jobs.
    MIXCAL_ASSIGN_OR_RETURN(
        CachedStatement a,
        c.db()->Cached(
            "SELECT EXISTS (SELECT 1 FROM jobs WHERE sweep_id = ?1 AND "
            "state IN (" JOB_QUEUED ", " JOB_RUNNING
            ")), (SELECT state FROM sweeps WHERE id = "
            "?1)"));
    a->Bind(1, sweep_id);
    MIXCAL_RETURN_IF_ERROR(a->Step().status());
    if (a->Int(0) != 0 && a->Int(1) == v1::SWEEP_ACTIVE)
      return absl::OkStatus();
  }
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement s,
      c.db()->Cached(
          "SELECT SUM(state IN (" JOB_QUEUED ", " JOB_RUNNING ")), "
          "SUM(state = " JOB_FAILED "), SUM(state = " JOB_CANCELLED "), "
          "(SELECT state FROM sweeps WHERE id = ?1) FROM jobs WHERE sweep_id = "
          "?1"));
  s->Bind(1, sweep_id);
  MIXCAL_RETURN_IF_ERROR(s->Step().status());
  const int64_t active = s->Int(0), failed = s->Int(1), cancelled = s->Int(2);
  const int64_t old_state = s->Int(3);
  v1::SweepState state = v1::SWEEP_SUCCEEDED;
  if (active > 0) {
    state = v1::SWEEP_ACTIVE;
  } else if (cancelled > 0) {
    state = v1::SWEEP_CANCELLED;
  } else if (failed > 0) {
    state = v1::SWEEP_FAILED;
  }
  if (state == old_state) return absl::OkStatus();
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement u,
      c.db()->Cached("UPDATE sweeps SET state = ? WHERE id = ?"));
  MIXCAL_RETURN_IF_ERROR(
      u->Bind(1, static_cast<int>(state)).Bind(2, sweep_id).Run());
  // In words, as `mixcal sweeps` writes states: "now cancelled".
  std::string word = v1::SweepState_Name(state);
  if (word.rfind("SWEEP_", 0) == 0) word = word.substr(6);
  for (char& ch : word) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return AddEvent(c, sweep_id, 0, "sweep_state", "now " + word);
}

}  // namespace mixcal::storage
