#include "storage/store.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "storage/internal/job_states.h"
#include "storage/internal/rows.h"
#include "storage/internal/sqlite.h"
#include "storage/internal/store_locks.h"
#include "storage/internal/schema.h"

namespace mixcal::storage {

int Store::LatestSchemaVersion() {
  return static_cast<int>(Migrations().size());
}

Store::Store(std::unique_ptr<Database> db, Clock* clock)
    : db_(std::move(db)), clock_(clock) {}
Store::~Store() {
  checkpointer_.reset();  // stops its thread before the writer closes
}

absl::StatusOr<std::unique_ptr<Store>> Store::Open(
    const StoreOptions& options) {
  if (options.path.empty())
    return absl::InvalidArgumentError("store path must not be empty");
  MIXCAL_ASSIGN_OR_RETURN(std::unique_ptr<Database> db,
                          Database::Open(options.path));
  sqlite3_busy_timeout(db->raw(), options.busy_timeout_ms);
  if (options.path != ":memory:") {
    MIXCAL_RETURN_IF_ERROR(db->Exec("PRAGMA journal_mode=WAL"));
  }
  // NORMAL in WAL mode: a committed transaction survives the process being
  // killed; only an OS crash or power loss can drop the last commits.
  MIXCAL_RETURN_IF_ERROR(db->Exec("PRAGMA synchronous=NORMAL"));
  MIXCAL_RETURN_IF_ERROR(db->Exec("PRAGMA foreign_keys=ON"));
  auto store = std::unique_ptr<Store>(
      new Store(std::move(db), options.clock ? options.clock : SystemClock()));
  absl::MutexLock lock(&store->mu_);
  MIXCAL_RETURN_IF_ERROR(store->Migrate(
      options.migrate_to > 0 ? options.migrate_to : LatestSchemaVersion()));
  if (options.path != ":memory:") {
    // Checkpoints run mostly beside requests, not inside whichever commit
    // crosses the threshold (that cost a next-job p99 of 4 ms;
    // docs/benchmarks.md). Attach replaces the auto-checkpoint's hook.
    MIXCAL_ASSIGN_OR_RETURN(store->checkpointer_,
                            Checkpointer::Start(options.path));
    store->checkpointer_->Attach(store->db_.get());
  }
  return store;
}

absl::StatusOr<int> Store::SchemaVersion() {
  RequestLock lock(this);
  MIXCAL_ASSIGN_OR_RETURN(
      Statement s, db_->Prepare("SELECT MAX(version) FROM schema_version"));
  MIXCAL_ASSIGN_OR_RETURN(bool row, s.Step());
  return row ? static_cast<int>(s.Int(0)) : 0;
}

absl::Status Store::Migrate(int target) {
  // Read the version without a write lock: opening an up-to-date file must
  // not wait for (or block) a busy writer in another process.
  auto read_version = [&]() -> absl::StatusOr<int> {
    MIXCAL_ASSIGN_OR_RETURN(
        Statement t,
        db_->Prepare("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' "
                     "AND name = 'schema_version'"));
    MIXCAL_RETURN_IF_ERROR(t.Step().status());
    if (t.Int(0) == 0) return 0;
    MIXCAL_ASSIGN_OR_RETURN(
        Statement v,
        db_->Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_version"));
    MIXCAL_RETURN_IF_ERROR(v.Step().status());
    return static_cast<int>(v.Int(0));
  };
  MIXCAL_ASSIGN_OR_RETURN(int current, read_version());
  if (current > LatestSchemaVersion()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the store file is at schema version ", current,
                     "; this mixcal knows versions up to ",
                     LatestSchemaVersion(), ": upgrade mixcal"));
  }
  if (current >= target) return absl::OkStatus();
  Transaction txn(db_.get());
  MIXCAL_RETURN_IF_ERROR(txn.Begin());
  // Another process may have migrated while we waited for the lock.
  MIXCAL_ASSIGN_OR_RETURN(current, read_version());
  MIXCAL_RETURN_IF_ERROR(db_->Exec(
      "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"));
  for (int v = current + 1; v <= target; ++v) {
    MIXCAL_RETURN_IF_ERROR(db_->Exec(Migrations()[v - 1]));
  }
  if (target > current) {
    MIXCAL_RETURN_IF_ERROR(db_->Exec("DELETE FROM schema_version"));
    MIXCAL_RETURN_IF_ERROR(db_->Exec(
        absl::StrCat("INSERT INTO schema_version VALUES (", target, ")")));
  }
  return txn.Commit();
}

absl::Status Store::AddEvent(int64_t sweep_id, int64_t job_id,
                             const std::string& kind,
                             const std::string& message) {
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement s,
      db_->Cached("INSERT INTO events (time, sweep_id, job_id, kind, message) "
                  "VALUES (?, ?, ?, ?, ?)"));
  return s->Bind(1, clock_->NowMicros())
      .Bind(2, sweep_id)
      .Bind(3, job_id)
      .Bind(4, kind)
      .Bind(5, message)
      .Run();
}

absl::Status Store::UpdateSweepState(int64_t sweep_id) {
  {
    // Usually the sweep is active and stays so: one index probe, not a
    // count over all its jobs.
    MIXCAL_ASSIGN_OR_RETURN(
        CachedStatement a,
        db_->Cached("SELECT EXISTS (SELECT 1 FROM jobs WHERE sweep_id = ?1 AND "
                    "state IN (" JOB_QUEUED ", " JOB_RUNNING ")), (SELECT state FROM sweeps WHERE id = "
                    "?1)"));
    a->Bind(1, sweep_id);
    MIXCAL_RETURN_IF_ERROR(a->Step().status());
    if (a->Int(0) != 0 && a->Int(1) == v1::SWEEP_ACTIVE)
      return absl::OkStatus();
  }
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement s,
      db_->Cached(
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
      db_->Cached("UPDATE sweeps SET state = ? WHERE id = ?"));
  MIXCAL_RETURN_IF_ERROR(
      u->Bind(1, static_cast<int>(state)).Bind(2, sweep_id).Run());
  return AddEvent(sweep_id, 0, "sweep_state", v1::SweepState_Name(state));
}

}  // namespace mixcal::storage
