#include "storage/sweep_book.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "base/utf8.h"
#include "spec/limits.h"
#include "spec/spec.h"
#include "storage/internal/connection.h"
#include "storage/internal/job_states.h"
#include "storage/internal/records.h"
#include "storage/internal/rows.h"
#include "storage/internal/sqlite.h"

namespace mixcal::storage {

absl::Status SweepBook::CheckQuota(const SubmitQuota& quota, int64_t new_jobs) {
  const std::string who =
      quota.submitter.empty() ? "this submitter" : Echo(quota.submitter);
  if (quota.max_active_sweeps > 0) {
    MIXCAL_ASSIGN_OR_RETURN(
        CachedStatement s,
        c_.db()->Cached("SELECT COUNT(*) FROM sweeps WHERE submitter = ? AND "
                        "state = " SWEEP_IS_ACTIVE));
    s->Bind(1, quota.submitter);
    MIXCAL_RETURN_IF_ERROR(s->Step().status());
    const int64_t active = s->Int(0);
    if (active + 1 > quota.max_active_sweeps) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "quota: ", who, " has ", active, " active sweeps; at most ",
          quota.max_active_sweeps,
          " may be active at once (--max_active_sweeps_per_submitter): wait "
          "for some to end or cancel them"));
    }
  }
  if (quota.max_unfinished_jobs > 0) {
    MIXCAL_ASSIGN_OR_RETURN(
        CachedStatement s,
        c_.db()->Cached(
            "SELECT COUNT(*) FROM jobs WHERE state IN (" JOB_QUEUED
            ", " JOB_RUNNING ") AND sweep_id IN (SELECT id FROM sweeps "
            "WHERE submitter = ? AND state = " SWEEP_IS_ACTIVE ")"));
    s->Bind(1, quota.submitter);
    MIXCAL_RETURN_IF_ERROR(s->Step().status());
    const int64_t unfinished = s->Int(0);
    if (unfinished + new_jobs > quota.max_unfinished_jobs) {
      return absl::ResourceExhaustedError(
          absl::StrCat("quota: ", who, " has ", unfinished,
                       " jobs queued or running and this sweep adds ", new_jobs,
                       "; at most ", quota.max_unfinished_jobs,
                       " are allowed (--max_unfinished_jobs_per_submitter)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Sweep> SweepBook::CreateSweep(const v1::SweepSpec& raw,
                                                 const SubmitQuota& quota) {
  MIXCAL_RETURN_IF_ERROR(spec::ValidateSweepSpec(raw));
  const v1::SweepSpec spec = spec::Normalized(raw);
  std::string spec_bytes;
  spec.SerializeToString(&spec_bytes);  // deterministic enough: no maps
  const std::vector<spec::JobSpec> jobs = spec::ExpandSweep(spec);

  RequestLock lock(c_);
  Transaction txn(c_.db());
  MIXCAL_RETURN_IF_ERROR(txn.Begin());
  if (!spec.request_id().empty()) {
    MIXCAL_ASSIGN_OR_RETURN(
        CachedStatement s,
        c_.db()->Cached("SELECT id, spec FROM sweeps WHERE request_id = ?"));
    s->Bind(1, spec.request_id());
    MIXCAL_ASSIGN_OR_RETURN(bool found, s->Step());
    if (found) {
      const int64_t id = s->Int(0);
      if (s->Blob(1) != spec_bytes) {
        return absl::FailedPreconditionError(absl::StrCat(
            "request_id \"", spec.request_id(),
            "\" was already used for sweep ", id, " with a different spec"));
      }
      return ReadSweep(c_, id);
    }
  }
  MIXCAL_RETURN_IF_ERROR(CheckQuota(quota, static_cast<int64_t>(jobs.size())));
  // Uploaded files the spec names must be stored, each of its kind.
  for (const auto& [field, hash, kind] :
       {std::tuple<const char*, const std::string*, const char*>{
            "model_file", &spec.model_file(), "model"},
        {"data.data_file", &spec.data().data_file(), "data"}}) {
    if (hash->empty()) continue;
    MIXCAL_ASSIGN_OR_RETURN(
        CachedStatement f,
        c_.db()->Cached("SELECT kind FROM files WHERE sha256 = ?"));
    f->Bind(1, *hash);
    MIXCAL_ASSIGN_OR_RETURN(bool stored, f->Step());
    if (!stored) {
      return absl::NotFoundError(absl::StrCat(
          field, " ", *hash,
          ": no file with this SHA-256 was uploaded (mixcal ",
          std::string(kind) == "model" ? "models" : "data", " upload FILE)"));
    }
    if (f->Text(0) != kind) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, " ", *hash, " was uploaded as a ", f->Text(0), " file, not a ",
          kind, " file"));
    }
    f->Reset();
  }
  const int64_t now = c_.clock()->NowMicros();
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement ins,
      c_.db()->Cached(
          "INSERT INTO sweeps (name, spec, request_id, created_at, "
          "state, priority, "
          "max_attempts, submitter) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"));
  ins->Bind(1, spec.name()).BindBlob(2, spec_bytes);
  if (spec.request_id().empty()) {
    ins->BindNull(3);
  } else {
    ins->Bind(3, spec.request_id());
  }
  MIXCAL_RETURN_IF_ERROR(ins->Bind(4, now)
                             .Bind(5, static_cast<int>(v1::SWEEP_ACTIVE))
                             .Bind(6, spec.priority())
                             .Bind(7, spec.max_attempts())
                             .Bind(8, quota.submitter)
                             .Run());
  const int64_t sweep_id = c_.db()->LastInsertId();
  for (const std::string* hash :
       {&spec.model_file(), &spec.data().data_file()}) {
    if (hash->empty()) continue;
    MIXCAL_ASSIGN_OR_RETURN(
        CachedStatement first,
        c_.db()->Cached("UPDATE files SET first_sweep = ? WHERE sha256 = ? "
                        "AND first_sweep = 0"));
    MIXCAL_RETURN_IF_ERROR(first->Bind(1, sweep_id).Bind(2, *hash).Run());
  }
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement job,
      c_.db()->Cached("INSERT INTO jobs (sweep_id, method, "
                      "value, seed, config, state, priority, "
                      "device, max_attempts, created_at) "
                      "VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?)"));
  std::string config;
  for (const spec::JobSpec& j : jobs) {
    job->Reset();
    j.config.SerializeToString(&config);
    MIXCAL_RETURN_IF_ERROR(job->Bind(1, sweep_id)
                               .Bind(2, j.method)
                               .Bind(3, j.value)
                               .Bind(4, j.seed)
                               .BindBlob(5, config)
                               .Bind(6, spec.priority())
                               .Bind(7, spec.device())
                               .Bind(8, spec.max_attempts())
                               .Bind(9, now)
                               .Run());
  }
  MIXCAL_RETURN_IF_ERROR(
      AddEvent(c_, sweep_id, 0, "submitted",
               absl::StrCat(spec.name(), ": ", jobs.size(), " jobs")));
  MIXCAL_ASSIGN_OR_RETURN(v1::Sweep sweep, ReadSweep(c_, sweep_id));
  MIXCAL_RETURN_IF_ERROR(txn.Commit());
  return sweep;
}

absl::StatusOr<v1::Sweep> SweepBook::GetSweep(int64_t sweep_id) {
  RequestLock lock(c_);
  return ReadSweep(c_, sweep_id);
}

absl::StatusOr<std::vector<v1::Sweep>> SweepBook::ListSweeps(int limit,
                                                             bool active_only) {
  RequestLock lock(c_);
  MIXCAL_ASSIGN_OR_RETURN(
      Statement s, c_.db()->Prepare(absl::StrCat(
                       "SELECT id FROM sweeps",
                       active_only ? " WHERE state = " SWEEP_IS_ACTIVE : "",
                       " ORDER BY id DESC LIMIT ?")));
  s.Bind(1, spec::EffectiveLimit(spec::kListSweepsLimit, limit));
  std::vector<int64_t> ids;
  while (true) {
    MIXCAL_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    ids.push_back(s.Int(0));
  }
  std::vector<v1::Sweep> out;
  for (int64_t id : ids) {
    MIXCAL_ASSIGN_OR_RETURN(v1::Sweep sweep, ReadSweep(c_, id));
    out.push_back(std::move(sweep));
  }
  return out;
}

namespace {

// PermissionDenied unless `actor` may change sweep `sweep`: its submitter,
// or an admin.
absl::Status CheckOwner(const v1::Sweep& sweep, const SweepBook::Actor& actor,
                        absl::string_view what) {
  if (actor.admin || sweep.submitter() == actor.who) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(
      "sweep ", sweep.id(), " belongs to ", Echo(sweep.submitter()), ": only ",
      "its submitter or an admin may ", what, " (you are ", Echo(actor.who),
      ")"));
}

}  // namespace

absl::StatusOr<v1::Sweep> SweepBook::CancelSweep(int64_t sweep_id,
                                                 const Actor& actor) {
  RequestLock lock(c_);
  Transaction txn(c_.db());
  MIXCAL_RETURN_IF_ERROR(txn.Begin());
  MIXCAL_ASSIGN_OR_RETURN(v1::Sweep before, ReadSweep(c_, sweep_id));
  MIXCAL_RETURN_IF_ERROR(CheckOwner(before, actor, "cancel it"));
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement s,
      c_.db()->Cached(
          "UPDATE jobs SET state = " JOB_CANCELLED ", finished_at = "
          "?, error = 'cancelled with its sweep' "
          "WHERE sweep_id = ? AND state IN (" JOB_QUEUED ", " JOB_RUNNING ")"));
  MIXCAL_RETURN_IF_ERROR(
      s->Bind(1, c_.clock()->NowMicros()).Bind(2, sweep_id).Run());
  MIXCAL_RETURN_IF_ERROR(
      AddEvent(c_, sweep_id, 0, "cancelled",
               absl::StrCat(c_.db()->Changes(), " jobs cancelled by ",
                            actor.who)));
  MIXCAL_RETURN_IF_ERROR(UpdateSweepState(c_, sweep_id));
  MIXCAL_ASSIGN_OR_RETURN(v1::Sweep sweep, ReadSweep(c_, sweep_id));
  MIXCAL_RETURN_IF_ERROR(txn.Commit());
  return sweep;
}

absl::StatusOr<v1::Job> SweepBook::GetJob(int64_t job_id) {
  RequestLock lock(c_);
  return ReadJob(c_, job_id);
}

absl::StatusOr<std::vector<v1::Job>> SweepBook::ListJobs(
    const JobFilter& filter) {
  RequestLock lock(c_);
  std::string sql =
      absl::StrCat("SELECT ", kJobColumns, " FROM jobs WHERE 1 = 1");
  if (filter.sweep_id > 0)
    absl::StrAppend(&sql, " AND sweep_id = ", filter.sweep_id);
  if (!filter.states.empty()) {
    std::vector<int> states(filter.states.begin(), filter.states.end());
    absl::StrAppend(&sql, " AND state IN (", absl::StrJoin(states, ","), ")");
  }
  absl::StrAppend(&sql, " ORDER BY id LIMIT ",
                  spec::EffectiveLimit(spec::kListJobsLimit, filter.limit));
  MIXCAL_ASSIGN_OR_RETURN(Statement s, c_.db()->Prepare(sql));
  std::vector<v1::Job> out;
  while (true) {
    MIXCAL_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    MIXCAL_ASSIGN_OR_RETURN(v1::Job job, JobFromRow(s));
    out.push_back(std::move(job));
  }
  return out;
}

absl::StatusOr<v1::Job> SweepBook::TransitionJob(
    int64_t job_id, std::initializer_list<v1::JobState> from, const char* verb,
    const char* event, const char* update_sql, const Actor& actor) {
  RequestLock lock(c_);
  Transaction txn(c_.db());
  MIXCAL_RETURN_IF_ERROR(txn.Begin());
  MIXCAL_ASSIGN_OR_RETURN(v1::Job job, ReadJob(c_, job_id));
  MIXCAL_ASSIGN_OR_RETURN(v1::Sweep sweep, ReadSweep(c_, job.sweep_id()));
  MIXCAL_RETURN_IF_ERROR(
      CheckOwner(sweep, actor, absl::StrCat("change its jobs (", verb, ")")));
  if (std::find(from.begin(), from.end(), job.state()) == from.end()) {
    std::vector<std::string> names;
    for (v1::JobState s : from) names.push_back(v1::JobState_Name(s));
    return absl::FailedPreconditionError(absl::StrCat(
        "job ", job_id, " is ", v1::JobState_Name(job.state()), "; only ",
        absl::StrJoin(names, " or "), " jobs can be ", verb));
  }
  MIXCAL_ASSIGN_OR_RETURN(CachedStatement s, c_.db()->Cached(update_sql));
  MIXCAL_RETURN_IF_ERROR(
      s->Bind(1, c_.clock()->NowMicros()).Bind(2, job_id).Run());
  MIXCAL_RETURN_IF_ERROR(
      AddEvent(c_, job.sweep_id(), job_id, event,
               absl::StrCat("was ", v1::JobState_Name(job.state()), "; by ",
                            actor.who)));
  MIXCAL_RETURN_IF_ERROR(UpdateSweepState(c_, job.sweep_id()));
  MIXCAL_ASSIGN_OR_RETURN(job, ReadJob(c_, job_id));
  MIXCAL_RETURN_IF_ERROR(txn.Commit());
  return job;
}

absl::StatusOr<v1::Job> SweepBook::CancelJob(int64_t job_id,
                                             const Actor& actor) {
  return TransitionJob(job_id, {v1::QUEUED, v1::RUNNING}, "cancelled",
                       "cancelled",
                       "UPDATE jobs SET state = " JOB_CANCELLED
                       ", finished_at = ?1, error = "
                       "'cancelled' WHERE id = ?2",
                       actor);
}

absl::StatusOr<v1::Job> SweepBook::RetryJob(int64_t job_id,
                                            const Actor& actor) {
  // Attempt numbers keep counting, so leases of earlier attempts stay fenced.
  return TransitionJob(job_id, {v1::FAILED, v1::CANCELLED}, "retried",
                       "retried",
                       "UPDATE jobs SET state = " JOB_QUEUED
                       ", worker_id = NULL, "
                       "lease_expires_at = 0, error = '', "
                       "finished_at = 0, max_attempts = attempt - handbacks + "
                       "(SELECT max_attempts FROM sweeps WHERE sweeps.id = "
                       "jobs.sweep_id) WHERE id = ?2",
                       actor);
}

}  // namespace mixcal::storage
