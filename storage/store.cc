#include "storage/store.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "proto/spec.h"
#include "storage/sqlite.h"
#include "worker/core/metrics.h"
#include "worker/core/status_macros.h"

namespace mixcal::storage {
namespace {

// Ordered migrations; schema_version holds the number applied. Never edit a
// released one: add the next.
const std::vector<const char*>& Migrations() {
  static const auto* m = new std::vector<const char*>{
      // 1: sweeps, jobs, workers, metrics.
      R"sql(
CREATE TABLE sweeps (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  spec BLOB NOT NULL,
  request_id TEXT UNIQUE,
  created_at INTEGER NOT NULL,
  state INTEGER NOT NULL,
  priority INTEGER NOT NULL,
  max_attempts INTEGER NOT NULL,
  turn INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE jobs (
  id INTEGER PRIMARY KEY,
  sweep_id INTEGER NOT NULL REFERENCES sweeps(id),
  method TEXT NOT NULL,
  value REAL NOT NULL,
  seed INTEGER NOT NULL,
  config BLOB NOT NULL,
  state INTEGER NOT NULL,
  priority INTEGER NOT NULL,
  device TEXT NOT NULL,
  attempt INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL,
  worker_id INTEGER,
  lease_expires_at INTEGER NOT NULL DEFAULT 0,
  checkpoint TEXT NOT NULL DEFAULT '',
  checkpoint_epoch INTEGER NOT NULL DEFAULT 0,
  last_epoch INTEGER NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  started_at INTEGER NOT NULL DEFAULT 0,
  finished_at INTEGER NOT NULL DEFAULT 0,
  UNIQUE (sweep_id, method, value, seed)
);
CREATE INDEX jobs_queue ON jobs(sweep_id, state, id);
CREATE INDEX jobs_leases ON jobs(state, lease_expires_at);
CREATE TABLE workers (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  host TEXT NOT NULL,
  device TEXT NOT NULL,
  device_name TEXT NOT NULL,
  memory_bytes INTEGER NOT NULL,
  capabilities TEXT NOT NULL,
  state INTEGER NOT NULL,
  registered_at INTEGER NOT NULL,
  last_heartbeat INTEGER NOT NULL
);
CREATE TABLE epoch_metrics (
  job_id INTEGER NOT NULL REFERENCES jobs(id),
  epoch INTEGER NOT NULL,
  split TEXT NOT NULL,
  count INTEGER NOT NULL,
  accuracy REAL, nll REAL, brier REAL, ece REAL, mce REAL, oe REAL,
  adaptive_ece REAL, mean_confidence REAL, mean_entropy REAL,
  auroc REAL, temperature REAL,
  train_loss REAL, train_accuracy REAL, lr REAL, samples_per_sec REAL,
  wall_seconds REAL,
  PRIMARY KEY (job_id, epoch, split)
) WITHOUT ROWID;
CREATE TABLE reliability_bins (
  job_id INTEGER NOT NULL REFERENCES jobs(id),
  epoch INTEGER NOT NULL,
  split TEXT NOT NULL,
  bin INTEGER NOT NULL,
  count INTEGER NOT NULL,
  confidence_sum REAL NOT NULL,
  correct INTEGER NOT NULL,
  PRIMARY KEY (job_id, epoch, split, bin)
) WITHOUT ROWID;
)sql",
      // 2: the audit trail, and an index for the scheduler's turns.
      R"sql(
CREATE TABLE events (
  id INTEGER PRIMARY KEY,
  time INTEGER NOT NULL,
  sweep_id INTEGER NOT NULL,
  job_id INTEGER NOT NULL,
  kind TEXT NOT NULL,
  message TEXT NOT NULL
);
CREATE INDEX events_by_sweep ON events(sweep_id, id);
CREATE INDEX events_by_job ON events(job_id, id);
CREATE INDEX sweeps_turn ON sweeps(turn);
)sql",
      // 3: an epoch's reliability bins in one row (JSON, bin order) instead
      // of a row per bin: a report is two rows, not sixteen. The view keeps
      // the row-per-bin shape of version 1 for SQL readers.
      R"sql(
CREATE TABLE epoch_bins (
  id INTEGER PRIMARY KEY,
  job_id INTEGER NOT NULL REFERENCES jobs(id),
  epoch INTEGER NOT NULL,
  split TEXT NOT NULL,
  bins TEXT NOT NULL,
  UNIQUE (job_id, epoch, split)
);
INSERT INTO epoch_bins (job_id, epoch, split, bins)
  SELECT job_id, epoch, split,
         '[' || group_concat('[' || count || ',' ||
                             printf('%!.17g', confidence_sum) || ',' ||
                             correct || ']', ',') || ']'
  FROM (SELECT * FROM reliability_bins ORDER BY job_id, epoch, split, bin)
  GROUP BY job_id, epoch, split;
DROP TABLE reliability_bins;
CREATE VIEW reliability_bins AS
  SELECT e.job_id AS job_id, e.epoch AS epoch, e.split AS split,
         CAST(b.key AS INTEGER) AS bin,
         json_extract(b.value, '$[0]') AS count,
         json_extract(b.value, '$[1]') AS confidence_sum,
         json_extract(b.value, '$[2]') AS correct
  FROM epoch_bins AS e, json_each(e.bins) AS b;
)sql",
  };
  return *m;
}

constexpr char kJobColumns[] =
    "id, sweep_id, method, value, seed, config, state, priority, device, "
    "attempt, "
    "max_attempts, COALESCE(worker_id, 0), lease_expires_at, checkpoint, "
    "checkpoint_epoch, "
    "last_epoch, error, created_at, started_at, finished_at";

v1::Job JobFromRow(const Statement& s) {
  v1::Job j;
  j.set_id(s.Int(0));
  j.set_sweep_id(s.Int(1));
  j.set_method(s.Text(2));
  j.set_value(s.Double(3));
  j.set_seed(static_cast<uint64_t>(s.Int(4)));
  j.mutable_config()->ParseFromString(s.Blob(5));
  j.set_state(static_cast<v1::JobState>(s.Int(6)));
  j.set_priority(static_cast<int32_t>(s.Int(7)));
  j.set_device(s.Text(8));
  j.set_attempt(static_cast<uint32_t>(s.Int(9)));
  j.set_max_attempts(static_cast<uint32_t>(s.Int(10)));
  j.set_worker_id(s.Int(11));
  j.set_lease_expires_at_us(s.Int(12));
  j.set_checkpoint(s.Text(13));
  j.set_checkpoint_epoch(static_cast<uint32_t>(s.Int(14)));
  j.set_last_epoch(static_cast<uint32_t>(s.Int(15)));
  j.set_error(s.Text(16));
  j.set_created_at_us(s.Int(17));
  j.set_started_at_us(s.Int(18));
  j.set_finished_at_us(s.Int(19));
  return j;
}

constexpr char kMetricColumns[] =
    "m.job_id, m.epoch, m.split, m.count, m.accuracy, m.nll, m.brier, m.ece, "
    "m.mce, m.oe, "
    "m.adaptive_ece, m.mean_confidence, m.mean_entropy, m.auroc, "
    "m.temperature, m.train_loss, "
    "m.train_accuracy, m.lr, m.samples_per_sec, m.wall_seconds, j.method, "
    "j.value, j.seed";

v1::EpochMetrics MetricsFromRow(const Statement& s) {
  v1::EpochMetrics m;
  m.set_job_id(s.Int(0));
  m.set_epoch(static_cast<uint32_t>(s.Int(1)));
  m.set_split(s.Text(2));
  m.set_count(s.Int(3));
  m.set_accuracy(s.Double(4));
  m.set_nll(s.Double(5));
  m.set_brier(s.Double(6));
  m.set_ece(s.Double(7));
  m.set_mce(s.Double(8));
  m.set_oe(s.Double(9));
  m.set_adaptive_ece(s.Double(10));
  m.set_mean_confidence(s.Double(11));
  m.set_mean_entropy(s.Double(12));
  if (!s.IsNull(13)) m.set_auroc(s.Double(13));
  if (!s.IsNull(14)) m.set_temperature(s.Double(14));
  m.set_train_loss(s.Double(15));
  m.set_train_accuracy(s.Double(16));
  m.set_lr(s.Double(17));
  m.set_samples_per_sec(s.Double(18));
  m.set_wall_seconds(s.Double(19));
  m.set_method(s.Text(20));
  m.set_value(s.Double(21));
  m.set_seed(static_cast<uint64_t>(s.Int(22)));
  return m;
}

// Summary metrics: name, column, whether larger is better.
struct MetricColumn {
  const char* name;
  bool higher_is_better;
};
const std::vector<MetricColumn>& SummaryColumns() {
  static const auto* c = new std::vector<MetricColumn>{
      {"accuracy", true},      {"ece", false},
      {"oe", false},           {"mce", false},
      {"nll", false},          {"brier", false},
      {"adaptive_ece", false}, {"mean_confidence", true},
      {"mean_entropy", false}, {"temperature", false},
      {"auroc", true},         {"train_loss", false}};
  return *c;
}

bool ValidSplitName(const std::string& s) {
  if (s.empty() || s.size() > 32) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

// An epoch's bins as stored: [[count,confidence_sum,correct],...], doubles in
// their shortest form that reads back to the same value.
std::string EncodeBins(
    const google::protobuf::RepeatedPtrField<v1::ReliabilityBin>& bins) {
  std::string out;
  out.reserve(2 + bins.size() * 32);
  out.push_back('[');
  char buf[32];
  for (int b = 0; b < bins.size(); ++b) {
    const v1::ReliabilityBin& bin = bins[b];
    out.append(b == 0 ? "[" : ",[");
    out.append(buf, std::to_chars(buf, buf + sizeof buf, bin.count()).ptr);
    out.push_back(',');
    const double sum = bin.confidence_sum();
    if (std::isfinite(sum)) {
      out.append(buf, std::to_chars(buf, buf + sizeof buf, sum).ptr);
    } else {
      out.append("null");  // not valid JSON otherwise; validated away before
    }
    out.push_back(',');
    out.append(buf, std::to_chars(buf, buf + sizeof buf, bin.correct()).ptr);
    out.push_back(']');
  }
  out.push_back(']');
  return out;
}

// The inverse of EncodeBins; false when `text` is not of that form.
bool DecodeBins(absl::string_view text, v1::EpochMetrics* m) {
  const char* p = text.data();
  const char* end = p + text.size();
  auto expect = [&](char c) {
    if (p == end || *p != c) return false;
    ++p;
    return true;
  };
  if (!expect('[')) return false;
  if (p != end && *p == ']') return ++p == end;
  while (true) {
    v1::ReliabilityBin* bin = m->add_bins();
    int64_t count = 0, correct = 0;
    double sum = 0;
    if (!expect('[')) return false;
    auto r = std::from_chars(p, end, count);
    if (r.ec != std::errc()) return false;
    p = r.ptr;
    if (!expect(',')) return false;
    auto d = std::from_chars(p, end, sum);
    if (d.ec != std::errc()) return false;
    p = d.ptr;
    if (!expect(',')) return false;
    r = std::from_chars(p, end, correct);
    if (r.ec != std::errc()) return false;
    p = r.ptr;
    if (!expect(']')) return false;
    bin->set_count(count);
    bin->set_confidence_sum(sum);
    bin->set_correct(correct);
    if (p != end && *p == ',') {
      ++p;
      continue;
    }
    return expect(']') && p == end;
  }
}

std::string WorkerDeviceClass(const std::string& device) {
  return device.rfind("cuda", 0) == 0 ? "cuda" : "cpu";
}

}  // namespace

const std::vector<std::string>& SummaryMetricNames() {
  static const auto* names = [] {
    auto* v = new std::vector<std::string>;
    for (const MetricColumn& c : SummaryColumns()) v->push_back(c.name);
    return v;
  }();
  return *names;
}

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

// Requests other than epoch reports (a worker's next job, a finish, a
// query) take the store before the report writer does: the writer retakes
// it as soon as it lets go, and would otherwise keep them waiting for
// several batches.
class Store::RequestLock {
 public:
  explicit RequestLock(Store* s) ABSL_EXCLUSIVE_LOCK_FUNCTION(s->mu_) : s_(s) {
    s_->requests_waiting_.fetch_add(1, std::memory_order_relaxed);
    s_->mu_.Lock();
    s_->requests_waiting_.fetch_sub(1, std::memory_order_relaxed);
  }
  ~RequestLock() ABSL_UNLOCK_FUNCTION() { s_->mu_.Unlock(); }

 private:
  Store* const s_;
};

class Store::ReportLock {
 public:
  explicit ReportLock(Store* s) ABSL_EXCLUSIVE_LOCK_FUNCTION(s->mu_) : s_(s) {
    // Let waiting requests go first, for at most about 10 ms.
    for (int i = 0;
         i < 500 && s_->requests_waiting_.load(std::memory_order_relaxed) > 0;
         ++i) {
      absl::SleepFor(absl::Microseconds(20));
    }
    s_->mu_.Lock();
  }
  ~ReportLock() ABSL_UNLOCK_FUNCTION() { s_->mu_.Unlock(); }

 private:
  Store* const s_;
};

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
                    "state IN (1, 2)), (SELECT state FROM sweeps WHERE id = "
                    "?1)"));
    a->Bind(1, sweep_id);
    MIXCAL_RETURN_IF_ERROR(a->Step().status());
    if (a->Int(0) != 0 && a->Int(1) == v1::SWEEP_ACTIVE)
      return absl::OkStatus();
  }
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement s,
      db_->Cached(
          "SELECT SUM(state IN (1, 2)), SUM(state = 4), SUM(state = 5), "
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

absl::StatusOr<v1::Sweep> Store::CreateSweep(const v1::SweepSpec& raw) {
  MIXCAL_RETURN_IF_ERROR(spec::ValidateSweepSpec(raw));
  const v1::SweepSpec spec = spec::Normalized(raw);
  std::string spec_bytes;
  spec.SerializeToString(&spec_bytes);  // deterministic enough: no maps
  const std::vector<spec::JobSpec> jobs = spec::ExpandSweep(spec);

  RequestLock lock(this);
  Transaction txn(db_.get());
  MIXCAL_RETURN_IF_ERROR(txn.Begin());
  if (!spec.request_id().empty()) {
    MIXCAL_ASSIGN_OR_RETURN(
        CachedStatement s,
        db_->Cached("SELECT id, spec FROM sweeps WHERE request_id = ?"));
    s->Bind(1, spec.request_id());
    MIXCAL_ASSIGN_OR_RETURN(bool found, s->Step());
    if (found) {
      const int64_t id = s->Int(0);
      if (s->Blob(1) != spec_bytes) {
        return absl::FailedPreconditionError(absl::StrCat(
            "request_id \"", spec.request_id(),
            "\" was already used for sweep ", id, " with a different spec"));
      }
      return GetSweepLocked(id);
    }
  }
  const int64_t now = clock_->NowMicros();
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement ins,
      db_->Cached("INSERT INTO sweeps (name, spec, request_id, created_at, "
                  "state, priority, "
                  "max_attempts) VALUES (?, ?, ?, ?, ?, ?, ?)"));
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
                             .Run());
  const int64_t sweep_id = db_->LastInsertId();
  MIXCAL_ASSIGN_OR_RETURN(CachedStatement job,
                          db_->Cached("INSERT INTO jobs (sweep_id, method, "
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
      AddEvent(sweep_id, 0, "submitted",
               absl::StrCat(spec.name(), ": ", jobs.size(), " jobs")));
  MIXCAL_ASSIGN_OR_RETURN(v1::Sweep sweep, GetSweepLocked(sweep_id));
  MIXCAL_RETURN_IF_ERROR(txn.Commit());
  return sweep;
}

absl::StatusOr<v1::Sweep> Store::GetSweep(int64_t sweep_id) {
  RequestLock lock(this);
  return GetSweepLocked(sweep_id);
}

absl::StatusOr<v1::Sweep> Store::GetSweepLocked(int64_t sweep_id) {
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement s,
      db_->Cached(
          "SELECT id, name, spec, state, created_at FROM sweeps WHERE id = ?"));
  s->Bind(1, sweep_id);
  MIXCAL_ASSIGN_OR_RETURN(bool found, s->Step());
  if (!found) return absl::NotFoundError(absl::StrCat("no sweep ", sweep_id));
  v1::Sweep sweep;
  sweep.set_id(s->Int(0));
  sweep.set_name(s->Text(1));
  sweep.mutable_spec()->ParseFromString(s->Blob(2));
  sweep.set_state(static_cast<v1::SweepState>(s->Int(3)));
  sweep.set_created_at_us(s->Int(4));
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement j,
      db_->Cached("SELECT id, state FROM jobs WHERE sweep_id = ? ORDER BY id"));
  j->Bind(1, sweep_id);
  v1::JobCounts* c = sweep.mutable_counts();
  while (true) {
    MIXCAL_ASSIGN_OR_RETURN(bool row, j->Step());
    if (!row) break;
    sweep.add_job_ids(j->Int(0));
    switch (static_cast<v1::JobState>(j->Int(1))) {
      case v1::QUEUED:
        c->set_queued(c->queued() + 1);
        break;
      case v1::RUNNING:
        c->set_running(c->running() + 1);
        break;
      case v1::SUCCEEDED:
        c->set_succeeded(c->succeeded() + 1);
        break;
      case v1::FAILED:
        c->set_failed(c->failed() + 1);
        break;
      case v1::CANCELLED:
        c->set_cancelled(c->cancelled() + 1);
        break;
      default:
        break;
    }
  }
  return sweep;
}

absl::StatusOr<std::vector<v1::Sweep>> Store::ListSweeps(int limit,
                                                         bool active_only) {
  RequestLock lock(this);
  MIXCAL_ASSIGN_OR_RETURN(
      Statement s,
      db_->Prepare(absl::StrCat("SELECT id FROM sweeps",
                                active_only ? " WHERE state = 1" : "",
                                " ORDER BY id DESC LIMIT ?")));
  s.Bind(1, std::clamp(limit <= 0 ? 100 : limit, 1, 1000));
  std::vector<int64_t> ids;
  while (true) {
    MIXCAL_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    ids.push_back(s.Int(0));
  }
  std::vector<v1::Sweep> out;
  for (int64_t id : ids) {
    MIXCAL_ASSIGN_OR_RETURN(v1::Sweep sweep, GetSweepLocked(id));
    out.push_back(std::move(sweep));
  }
  return out;
}

absl::StatusOr<v1::Sweep> Store::CancelSweep(int64_t sweep_id) {
  RequestLock lock(this);
  Transaction txn(db_.get());
  MIXCAL_RETURN_IF_ERROR(txn.Begin());
  MIXCAL_RETURN_IF_ERROR(GetSweepLocked(sweep_id).status());
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement s, db_->Cached("UPDATE jobs SET state = 5, finished_at = "
                                     "?, error = 'cancelled with its sweep' "
                                     "WHERE sweep_id = ? AND state IN (1, 2)"));
  MIXCAL_RETURN_IF_ERROR(
      s->Bind(1, clock_->NowMicros()).Bind(2, sweep_id).Run());
  MIXCAL_RETURN_IF_ERROR(
      AddEvent(sweep_id, 0, "cancelled",
               absl::StrCat(db_->Changes(), " jobs cancelled")));
  MIXCAL_RETURN_IF_ERROR(UpdateSweepState(sweep_id));
  MIXCAL_ASSIGN_OR_RETURN(v1::Sweep sweep, GetSweepLocked(sweep_id));
  MIXCAL_RETURN_IF_ERROR(txn.Commit());
  return sweep;
}

absl::StatusOr<v1::Job> Store::GetJob(int64_t job_id) {
  RequestLock lock(this);
  return GetJobLocked(job_id);
}

absl::StatusOr<v1::Job> Store::GetJobLocked(int64_t job_id) {
  MIXCAL_ASSIGN_OR_RETURN(CachedStatement s,
                          db_->Cached(absl::StrCat("SELECT ", kJobColumns,
                                                   " FROM jobs WHERE id = ?")));
  s->Bind(1, job_id);
  MIXCAL_ASSIGN_OR_RETURN(bool found, s->Step());
  if (!found) return absl::NotFoundError(absl::StrCat("no job ", job_id));
  return JobFromRow(*s);
}

absl::StatusOr<std::vector<v1::Job>> Store::ListJobs(const JobFilter& filter) {
  RequestLock lock(this);
  std::string sql =
      absl::StrCat("SELECT ", kJobColumns, " FROM jobs WHERE 1 = 1");
  if (filter.sweep_id > 0)
    absl::StrAppend(&sql, " AND sweep_id = ", filter.sweep_id);
  if (!filter.states.empty()) {
    std::vector<int> states(filter.states.begin(), filter.states.end());
    absl::StrAppend(&sql, " AND state IN (", absl::StrJoin(states, ","), ")");
  }
  absl::StrAppend(&sql, " ORDER BY id LIMIT ",
                  std::clamp(filter.limit, 1, 10000));
  MIXCAL_ASSIGN_OR_RETURN(Statement s, db_->Prepare(sql));
  std::vector<v1::Job> out;
  while (true) {
    MIXCAL_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(JobFromRow(s));
  }
  return out;
}

absl::StatusOr<v1::Job> Store::TransitionJob(
    int64_t job_id, std::initializer_list<v1::JobState> from, const char* verb,
    const char* event, const char* update_sql) {
  RequestLock lock(this);
  Transaction txn(db_.get());
  MIXCAL_RETURN_IF_ERROR(txn.Begin());
  MIXCAL_ASSIGN_OR_RETURN(v1::Job job, GetJobLocked(job_id));
  if (std::find(from.begin(), from.end(), job.state()) == from.end()) {
    std::vector<std::string> names;
    for (v1::JobState s : from) names.push_back(v1::JobState_Name(s));
    return absl::FailedPreconditionError(absl::StrCat(
        "job ", job_id, " is ", v1::JobState_Name(job.state()), "; only ",
        absl::StrJoin(names, " or "), " jobs can be ", verb));
  }
  MIXCAL_ASSIGN_OR_RETURN(CachedStatement s, db_->Cached(update_sql));
  MIXCAL_RETURN_IF_ERROR(s->Bind(1, clock_->NowMicros()).Bind(2, job_id).Run());
  MIXCAL_RETURN_IF_ERROR(
      AddEvent(job.sweep_id(), job_id, event,
               absl::StrCat("was ", v1::JobState_Name(job.state()))));
  MIXCAL_RETURN_IF_ERROR(UpdateSweepState(job.sweep_id()));
  MIXCAL_ASSIGN_OR_RETURN(job, GetJobLocked(job_id));
  MIXCAL_RETURN_IF_ERROR(txn.Commit());
  return job;
}

absl::StatusOr<v1::Job> Store::CancelJob(int64_t job_id) {
  return TransitionJob(job_id, {v1::QUEUED, v1::RUNNING}, "cancelled",
                       "cancelled",
                       "UPDATE jobs SET state = 5, finished_at = ?1, error = "
                       "'cancelled' WHERE id = ?2");
}

absl::StatusOr<v1::Job> Store::RetryJob(int64_t job_id) {
  // Attempt numbers keep counting, so leases of earlier attempts stay fenced.
  return TransitionJob(job_id, {v1::FAILED, v1::CANCELLED}, "retried",
                       "retried",
                       "UPDATE jobs SET state = 1, worker_id = NULL, "
                       "lease_expires_at = 0, error = '', "
                       "finished_at = 0, max_attempts = attempt + "
                       "(SELECT max_attempts FROM sweeps WHERE sweeps.id = "
                       "jobs.sweep_id) WHERE id = ?2");
}

absl::StatusOr<int64_t> Store::RegisterWorker(const v1::WorkerInfo& info) {
  if (info.host().empty() || info.host().size() > 256) {
    return absl::InvalidArgumentError(absl::StrCat(
        "host must be 1 to 256 characters, got ", info.host().size()));
  }
  const std::string& d = info.device();
  const bool cuda_n = d.rfind("cuda:", 0) == 0 && d.size() > 5 &&
                      d.size() <= 8 &&
                      std::all_of(d.begin() + 5, d.end(),
                                  [](char c) { return c >= '0' && c <= '9'; });
  if (d != "cpu" && d != "cuda" && !cuda_n) {
    return absl::InvalidArgumentError(
        absl::StrCat("device must be cpu, cuda or cuda:N, got \"", d, "\""));
  }
  if (info.name().size() > 256 || info.device_name().size() > 256 ||
      info.capabilities_size() > 64) {
    return absl::InvalidArgumentError(
        "name and device_name must be at most 256 characters, capabilities at "
        "most 64");
  }
  RequestLock lock(this);
  const int64_t now = clock_->NowMicros();
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement s,
      db_->Cached(
          "INSERT INTO workers (name, host, device, device_name, memory_bytes, "
          "capabilities, state, registered_at, last_heartbeat) "
          "VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)"));
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
                             .Run());
  const int64_t id = db_->LastInsertId();
  MIXCAL_RETURN_IF_ERROR(
      AddEvent(0, 0, "worker_registered",
               absl::StrCat("worker ", id, " ", info.host(), " ", d)));
  return id;
}

absl::StatusOr<std::vector<v1::WorkerInfo>> Store::ListWorkers() {
  RequestLock lock(this);
  MIXCAL_ASSIGN_OR_RETURN(
      Statement s,
      db_->Prepare(
          "SELECT w.id, w.name, w.host, w.device, w.device_name, "
          "w.memory_bytes, "
          "w.capabilities, w.state, w.registered_at, w.last_heartbeat, "
          "(SELECT MAX(j.id) FROM jobs j WHERE j.worker_id = w.id AND j.state "
          "= 2) "
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
    out.push_back(std::move(w));
  }
  return out;
}

absl::StatusOr<std::optional<Assignment>> Store::AcquireJob(int64_t worker_id,
                                                            int64_t lease_us) {
  RequestLock lock(this);
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement w,
      db_->Cached("SELECT device FROM workers WHERE id = ?"));
  w->Bind(1, worker_id);
  MIXCAL_ASSIGN_OR_RETURN(bool known, w->Step());
  if (!known)
    return absl::NotFoundError(
        absl::StrCat("no worker ", worker_id, ": register first"));
  const std::string device_class = WorkerDeviceClass(w->Text(0));

  Transaction txn(db_.get());
  MIXCAL_RETURN_IF_ERROR(txn.Begin());
  // The sweep whose turn it is: highest priority, then served least recently.
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement pick_sweep,
      db_->Cached(
          "SELECT s.id FROM sweeps s WHERE s.state = 1 AND EXISTS ("
          "SELECT 1 FROM jobs j WHERE j.sweep_id = s.id AND j.state = 1 "
          "AND j.device IN (?1, 'any')) ORDER BY s.priority DESC, s.turn, s.id "
          "LIMIT 1"));
  pick_sweep->Bind(1, device_class);
  MIXCAL_ASSIGN_OR_RETURN(bool any, pick_sweep->Step());
  if (!any) return std::optional<Assignment>();
  const int64_t sweep_id = pick_sweep->Int(0);
  // The oldest queued job of that sweep this worker can run.
  MIXCAL_ASSIGN_OR_RETURN(CachedStatement pick_job,
                          db_->Cached("SELECT id FROM jobs WHERE sweep_id = ? "
                                      "AND state = 1 AND device IN (?, 'any') "
                                      "ORDER BY id LIMIT 1"));
  pick_job->Bind(1, sweep_id).Bind(2, device_class);
  MIXCAL_RETURN_IF_ERROR(pick_job->Step().status());
  const int64_t job_id = pick_job->Int(0);
  const int64_t now = clock_->NowMicros();
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement lease,
      db_->Cached(
          "UPDATE jobs SET state = 2, attempt = attempt + 1, worker_id = ?, "
          "lease_expires_at = ?, started_at = CASE WHEN started_at = 0 THEN ? "
          "ELSE started_at END WHERE id = ?"));
  MIXCAL_RETURN_IF_ERROR(lease->Bind(1, worker_id)
                             .Bind(2, now + lease_us)
                             .Bind(3, now)
                             .Bind(4, job_id)
                             .Run());
  MIXCAL_ASSIGN_OR_RETURN(CachedStatement turn,
                          db_->Cached("UPDATE sweeps SET turn = (SELECT "
                                      "COALESCE(MAX(turn), 0) + 1 FROM sweeps) "
                                      "WHERE id = ?"));
  MIXCAL_RETURN_IF_ERROR(turn->Bind(1, sweep_id).Run());
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement touch,
      db_->Cached(
          "UPDATE workers SET last_heartbeat = ?, state = 1 WHERE id = ?"));
  MIXCAL_RETURN_IF_ERROR(touch->Bind(1, now).Bind(2, worker_id).Run());
  Assignment a;
  MIXCAL_ASSIGN_OR_RETURN(a.job, GetJobLocked(job_id));
  a.lease.set_job_id(job_id);
  a.lease.set_attempt(a.job.attempt());
  MIXCAL_RETURN_IF_ERROR(
      AddEvent(sweep_id, job_id, "leased",
               absl::StrCat("worker ", worker_id, ", attempt ", a.job.attempt(),
                            " of ", a.job.max_attempts())));
  MIXCAL_RETURN_IF_ERROR(txn.Commit());
  return std::optional<Assignment>(std::move(a));
}

absl::StatusOr<HeartbeatResult> Store::Heartbeat(
    int64_t worker_id, const std::vector<v1::Lease>& leases, int64_t lease_us) {
  RequestLock lock(this);
  Transaction txn(db_.get());
  MIXCAL_RETURN_IF_ERROR(txn.Begin());
  const int64_t now = clock_->NowMicros();
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement touch,
      db_->Cached(
          "UPDATE workers SET last_heartbeat = ?, state = 1 WHERE id = ?"));
  MIXCAL_RETURN_IF_ERROR(touch->Bind(1, now).Bind(2, worker_id).Run());
  if (db_->Changes() == 0) {
    return absl::NotFoundError(
        absl::StrCat("no worker ", worker_id, ": register again"));
  }
  HeartbeatResult r;
  for (const v1::Lease& l : leases) {
    MIXCAL_ASSIGN_OR_RETURN(
        CachedStatement s,
        db_->Cached("SELECT state, attempt FROM jobs WHERE id = ?"));
    s->Bind(1, l.job_id());
    MIXCAL_ASSIGN_OR_RETURN(bool found, s->Step());
    const auto state = found ? static_cast<v1::JobState>(s->Int(0))
                             : v1::JOB_STATE_UNSPECIFIED;
    const bool current = found && s->Int(1) == l.attempt();
    if (current && state == v1::RUNNING) {
      MIXCAL_ASSIGN_OR_RETURN(
          CachedStatement u,
          db_->Cached("UPDATE jobs SET lease_expires_at = ? WHERE id = ?"));
      MIXCAL_RETURN_IF_ERROR(
          u->Bind(1, now + lease_us).Bind(2, l.job_id()).Run());
      r.extended.push_back(l);
    } else if (current && state == v1::CANCELLED) {
      r.cancelled.push_back(l);
    } else {
      r.lost.push_back(l);
    }
  }
  MIXCAL_RETURN_IF_ERROR(txn.Commit());
  return r;
}

absl::StatusOr<ExpireResult> Store::ExpireLeases() {
  RequestLock lock(this);
  Transaction txn(db_.get());
  MIXCAL_RETURN_IF_ERROR(txn.Begin());
  const int64_t now = clock_->NowMicros();
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement s,
      db_->Cached("SELECT id, sweep_id, attempt, max_attempts, "
                  "COALESCE(worker_id, 0) FROM jobs "
                  "WHERE state = 2 AND lease_expires_at < ?"));
  s->Bind(1, now);
  struct Expired {
    int64_t id, sweep_id, attempt, max_attempts, worker_id;
  };
  std::vector<Expired> expired;
  while (true) {
    MIXCAL_ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) break;
    expired.push_back({s->Int(0), s->Int(1), s->Int(2), s->Int(3), s->Int(4)});
  }
  ExpireResult r;
  for (const Expired& e : expired) {
    const bool give_up = e.attempt >= e.max_attempts;
    const std::string why = absl::StrCat("lease expired on attempt ", e.attempt,
                                         " of ", e.max_attempts, ": worker ",
                                         e.worker_id, " stopped heartbeating");
    MIXCAL_ASSIGN_OR_RETURN(
        CachedStatement u,
        db_->Cached("UPDATE jobs SET state = ?, worker_id = NULL, "
                    "lease_expires_at = 0, "
                    "error = ?, finished_at = ? WHERE id = ?"));
    MIXCAL_RETURN_IF_ERROR(u->Bind(1, give_up ? 4 : 1)
                               .Bind(2, give_up ? why : std::string())
                               .Bind(3, give_up ? now : 0)
                               .Bind(4, e.id)
                               .Run());
    MIXCAL_ASSIGN_OR_RETURN(
        CachedStatement w,
        db_->Cached("UPDATE workers SET state = 2 WHERE id = ?"));
    MIXCAL_RETURN_IF_ERROR(w->Bind(1, e.worker_id).Run());
    MIXCAL_RETURN_IF_ERROR(
        AddEvent(e.sweep_id, e.id, give_up ? "failed" : "requeued", why));
    MIXCAL_RETURN_IF_ERROR(UpdateSweepState(e.sweep_id));
    (give_up ? r.failed : r.requeued).push_back(e.id);
  }
  MIXCAL_RETURN_IF_ERROR(txn.Commit());
  return r;
}

absl::Status Store::CheckLease(const v1::Lease& lease,
                               v1::JobState* state_out) {
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement s,
      db_->Cached("SELECT state, attempt FROM jobs WHERE id = ?"));
  s->Bind(1, lease.job_id());
  MIXCAL_ASSIGN_OR_RETURN(bool found, s->Step());
  if (!found)
    return absl::NotFoundError(absl::StrCat("no job ", lease.job_id()));
  const auto state = static_cast<v1::JobState>(s->Int(0));
  const int64_t attempt = s->Int(1);
  if (state_out != nullptr && attempt == lease.attempt()) *state_out = state;
  // Fence on attempt and state: a worker that lost its lease may still be
  // running and must not overwrite the new attempt's epochs.
  if (attempt != lease.attempt() || state != v1::RUNNING) {
    return absl::FailedPreconditionError(
        absl::StrCat("stale lease: job ", lease.job_id(), " attempt ",
                     lease.attempt(), " is not running (job is ",
                     v1::JobState_Name(state), " at attempt ", attempt, ")"));
  }
  return absl::OkStatus();
}

namespace {

absl::Status ValidateReport(const v1::ReportEpochRequest& req) {
  const auto& metrics = req.metrics();
  if (metrics.empty() || metrics.size() > 16) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics must hold 1 to 16 splits, got ", metrics.size()));
  }
  const uint32_t epoch = metrics[0].epoch();
  for (int i = 0; i < metrics.size(); ++i) {
    const v1::EpochMetrics& m = metrics[i];
    if (m.epoch() < 1 || m.epoch() > 100000 || m.epoch() != epoch) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metrics[", i,
          "].epoch must be in [1, 100000] and the same for all splits, got ",
          m.epoch()));
    }
    if (!ValidSplitName(m.split())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metrics[", i, "].split must be 1 to 32 of [a-z0-9_-], got \"",
          m.split(), "\""));
    }
    if (m.job_id() != 0 && m.job_id() != req.lease().job_id()) {
      return absl::InvalidArgumentError(
          absl::StrCat("metrics[", i, "].job_id ", m.job_id(),
                       " is not the lease's job ", req.lease().job_id()));
    }
    if (m.bins_size() > 1000) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metrics[", i, "].bins must have at most 1000 bins, got ",
          m.bins_size()));
    }
    for (int b = 0; b < m.bins_size(); ++b) {
      const v1::ReliabilityBin& bin = m.bins(b);
      if (bin.count() < 0 || bin.correct() < 0 || bin.correct() > bin.count() ||
          !(bin.confidence_sum() >= 0 &&
            bin.confidence_sum() <= static_cast<double>(bin.count()))) {
        return absl::InvalidArgumentError(
            absl::StrCat("metrics[", i, "].bins[", b,
                         "] must have count >= 0, correct in [0, count] and "
                         "confidence_sum in [0, count], got count ",
                         bin.count(), ", correct ", bin.correct(),
                         ", confidence_sum ", bin.confidence_sum()));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

namespace {

absl::Status ValidateCheckpoint(const std::string& path) {
  if (path.empty() || path.size() > spec::kMaxPathLength) {
    return absl::InvalidArgumentError(absl::StrCat(
        "path must be 1 to ", spec::kMaxPathLength, " characters"));
  }
  return absl::OkStatus();
}

absl::Status ValidateOutcome(v1::JobState outcome) {
  if (outcome != v1::SUCCEEDED && outcome != v1::FAILED &&
      outcome != v1::CANCELLED) {
    return absl::InvalidArgumentError(
        absl::StrCat("outcome must be SUCCEEDED, FAILED or CANCELLED, got ",
                     v1::JobState_Name(outcome)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Store::ReportEpoch(const v1::Lease& lease,
                                const std::vector<v1::EpochMetrics>& metrics) {
  v1::ReportEpochRequest req;
  *req.mutable_lease() = lease;
  for (const v1::EpochMetrics& m : metrics) *req.add_metrics() = m;
  return ReportEpoch(req);
}

absl::Status Store::ReportEpoch(const v1::ReportEpochRequest& report) {
  const ReportItem item{&report, nullptr, nullptr};
  return StoreItems({&item, 1})[0].status;
}

std::vector<ReportResult> Store::StoreReports(
    absl::Span<const v1::WorkerReport* const> reports) {
  std::vector<ReportItem> items;
  items.reserve(reports.size());
  for (const v1::WorkerReport* r : reports) {
    items.push_back({r->has_epoch() ? &r->epoch() : nullptr,
                     r->has_checkpoint() ? &r->checkpoint() : nullptr,
                     r->has_finish() ? &r->finish() : nullptr});
  }
  return StoreItems(items);
}

std::vector<ReportResult> Store::StoreItems(
    absl::Span<const ReportItem> items) {
  std::vector<ReportResult> results(items.size());
  std::vector<ReportItem> valid;
  std::vector<size_t> where;
  for (size_t i = 0; i < items.size(); ++i) {
    const ReportItem& it = items[i];
    absl::Status s;
    if (it.epoch != nullptr) {
      s = ValidateReport(*it.epoch);
    } else if (it.checkpoint != nullptr) {
      s = ValidateCheckpoint(it.checkpoint->path());
    } else if (it.finish != nullptr) {
      s = ValidateOutcome(it.finish->outcome());
    } else {
      s = absl::InvalidArgumentError(
          "report must hold an epoch, a checkpoint or a finish");
    }
    results[i].status = s;
    if (s.ok()) {
      valid.push_back(it);
      where.push_back(i);
    }
  }
  if (valid.empty()) return results;
  std::vector<ReportResult> written;
  {
    ReportLock lock(this);
    written = WriteItems(valid);
  }
  for (size_t k = 0; k < where.size(); ++k)
    results[where[k]] = std::move(written[k]);
  return results;
}

std::vector<ReportResult> Store::WriteItems(
    absl::Span<const ReportItem> items) {
  std::vector<ReportResult> results(items.size());
  // Fast: no savepoint per item. A refusal (stale lease, a finished job) is
  // found before anything of its item is written, so it needs none; a write
  // failing after its checks (I/O, a full disk) rolls back the batch, which
  // is then written again with a savepoint per item, so that only that item
  // fails.
  absl::Status s = WriteBatch(items, /*savepoints=*/false, &results);
  if (s.ok()) return results;
  s = WriteBatch(items, /*savepoints=*/true, &results);
  if (!s.ok()) {
    for (ReportResult& r : results)
      if (r.status.ok()) r.status = s;
  }
  return results;
}

namespace {
// Refusals that come before an item writes anything.
bool Refusal(const absl::Status& s) {
  return absl::IsFailedPrecondition(s) || absl::IsNotFound(s) ||
         absl::IsInvalidArgument(s);
}
}  // namespace

absl::Status Store::WriteBatch(absl::Span<const ReportItem> items,
                               bool savepoints,
                               std::vector<ReportResult>* results) {
  auto exec_cached = [&](const char* sql) -> absl::Status {
    MIXCAL_ASSIGN_OR_RETURN(CachedStatement st, db_->Cached(sql));
    return st->Run();
  };
  Transaction txn(db_.get());
  MIXCAL_RETURN_IF_ERROR(txn.Begin());
  // Only a finish changes a job's state or attempt here, so a lease is
  // checked once per batch until its job finishes.
  // A refusal carries the job's state (on this attempt): a worker tells a
  // job a person cancelled from one it lost.
  std::map<std::pair<int64_t, int64_t>, ReportResult> leases;
  auto check = [&](const v1::Lease& l) -> const ReportResult& {
    const auto key =
        std::make_pair(l.job_id(), static_cast<int64_t>(l.attempt()));
    auto it = leases.find(key);
    if (it == leases.end()) {
      ReportResult r;
      r.status = CheckLease(l, &r.state);
      if (r.status.ok()) r.state = v1::JOB_STATE_UNSPECIFIED;
      it = leases.emplace(key, std::move(r)).first;
    }
    return it->second;
  };
  std::map<int64_t, uint32_t> last_epoch;  // per job, of the epochs stored
  for (size_t i = 0; i < items.size(); ++i) {
    const ReportItem& it = items[i];
    ReportResult& result = (*results)[i];
    result = ReportResult();
    if (it.finish == nullptr) {
      const v1::Lease& lease =
          it.epoch != nullptr ? it.epoch->lease() : it.checkpoint->lease();
      const ReportResult& lease_check = check(lease);
      if (!lease_check.status.ok()) {
        result = lease_check;
        continue;
      }
    }
    if (savepoints) MIXCAL_RETURN_IF_ERROR(exec_cached("SAVEPOINT report"));
    absl::Status s;
    if (it.epoch != nullptr) {
      s = WriteReportRows(*it.epoch);
    } else if (it.checkpoint != nullptr) {
      s = CheckpointLocked(it.checkpoint->lease(), it.checkpoint->epoch(),
                           it.checkpoint->path());
    } else {
      const int64_t job = it.finish->lease().job_id();
      // The job's newest epoch goes in before its state changes.
      if (auto e = last_epoch.find(job); e != last_epoch.end()) {
        s = SetLastEpoch(job, e->second);
        last_epoch.erase(e);
      }
      if (s.ok()) {
        absl::StatusOr<v1::JobState> state = FinishLocked(
            it.finish->lease(), it.finish->outcome(), it.finish->error());
        s = state.status();
        if (state.ok()) result.state = *state;
      }
      leases.erase(leases.lower_bound({job, 0}),
                   leases.lower_bound({job + 1, 0}));
      if (!savepoints && !s.ok() && Refusal(s)) {
        result.status = s;  // wrote nothing
        continue;
      }
    }
    if (!s.ok()) {
      if (!savepoints) return s;
      exec_cached("ROLLBACK TO report").IgnoreError();
    }
    if (savepoints) exec_cached("RELEASE report").IgnoreError();
    result.status = s;
    if (s.ok() && it.epoch != nullptr) {
      uint32_t& e = last_epoch[it.epoch->lease().job_id()];
      e = std::max(e, it.epoch->metrics(0).epoch());
    }
  }
  for (const auto& [job, epoch] : last_epoch)
    MIXCAL_RETURN_IF_ERROR(SetLastEpoch(job, epoch));
  return txn.Commit();
}

absl::Status Store::SetLastEpoch(int64_t job, uint32_t epoch) {
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement last,
      db_->Cached(
          "UPDATE jobs SET last_epoch = MAX(last_epoch, ?) WHERE id = ?"));
  return last->Bind(1, epoch).Bind(2, job).Run();
}

absl::Status Store::WriteReportRows(const v1::ReportEpochRequest& report) {
  const int64_t job = report.lease().job_id();
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement put,
      db_->Cached("INSERT OR REPLACE INTO epoch_metrics (job_id, epoch, split, "
                  "count, accuracy, "
                  "nll, brier, ece, mce, oe, adaptive_ece, mean_confidence, "
                  "mean_entropy, auroc, "
                  "temperature, train_loss, train_accuracy, lr, "
                  "samples_per_sec, wall_seconds) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                  "?, ?, ?)"));
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement put_bins,
      db_->Cached("INSERT OR REPLACE INTO epoch_bins (job_id, epoch, split, "
                  "bins) VALUES (?, ?, ?, ?)"));
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement del_bins,
      db_->Cached("DELETE FROM epoch_bins WHERE job_id = ? AND epoch = ? AND "
                  "split = ?"));
  for (const v1::EpochMetrics& m : report.metrics()) {
    put->Reset();
    put->Bind(1, job)
        .Bind(2, m.epoch())
        .Bind(3, m.split())
        .Bind(4, m.count())
        .Bind(5, m.accuracy())
        .Bind(6, m.nll())
        .Bind(7, m.brier())
        .Bind(8, m.ece())
        .Bind(9, m.mce())
        .Bind(10, m.oe())
        .Bind(11, m.adaptive_ece())
        .Bind(12, m.mean_confidence())
        .Bind(13, m.mean_entropy())
        .Bind(14,
              m.has_auroc() ? std::optional<double>(m.auroc()) : std::nullopt)
        .Bind(15, m.has_temperature() ? std::optional<double>(m.temperature())
                                      : std::nullopt)
        .Bind(16, m.train_loss())
        .Bind(17, m.train_accuracy())
        .Bind(18, m.lr())
        .Bind(19, m.samples_per_sec())
        .Bind(20, m.wall_seconds());
    MIXCAL_RETURN_IF_ERROR(put->Run());
    if (m.bins_size() > 0) {
      put_bins->Reset();
      MIXCAL_RETURN_IF_ERROR(put_bins->Bind(1, job)
                                 .Bind(2, m.epoch())
                                 .Bind(3, m.split())
                                 .Bind(4, EncodeBins(m.bins()))
                                 .Run());
    } else {
      del_bins->Reset();
      MIXCAL_RETURN_IF_ERROR(
          del_bins->Bind(1, job).Bind(2, m.epoch()).Bind(3, m.split()).Run());
    }
  }
  return absl::OkStatus();
}

absl::Status Store::ReadBins(v1::EpochMetrics* m) {
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement b,
      db_->Cached("SELECT bins FROM epoch_bins WHERE job_id = ? AND epoch = ? "
                  "AND split = ?"));
  b->Bind(1, m->job_id()).Bind(2, m->epoch()).Bind(3, m->split());
  MIXCAL_ASSIGN_OR_RETURN(bool row, b->Step());
  if (!row) return absl::OkStatus();
  if (!DecodeBins(b->Text(0), m)) {
    return absl::DataLossError(absl::StrCat(
        "epoch_bins of job ", m->job_id(), " epoch ", m->epoch(), " split ",
        m->split(), " is not a list of [count, confidence_sum, correct]"));
  }
  return absl::OkStatus();
}

absl::Status Store::RecordCheckpoint(const v1::Lease& lease, uint32_t epoch,
                                     const std::string& path) {
  MIXCAL_RETURN_IF_ERROR(ValidateCheckpoint(path));
  RequestLock lock(this);
  Transaction txn(db_.get());
  MIXCAL_RETURN_IF_ERROR(txn.Begin());
  MIXCAL_RETURN_IF_ERROR(CheckLease(lease));
  MIXCAL_RETURN_IF_ERROR(CheckpointLocked(lease, epoch, path));
  return txn.Commit();
}

absl::Status Store::CheckpointLocked(const v1::Lease& lease, uint32_t epoch,
                                     const std::string& path) {
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement s,
      db_->Cached("UPDATE jobs SET checkpoint = ?, checkpoint_epoch = ? "
                  "WHERE id = ? AND checkpoint_epoch <= ?"));
  return s->Bind(1, path)
      .Bind(2, epoch)
      .Bind(3, lease.job_id())
      .Bind(4, epoch)
      .Run();
}

absl::StatusOr<v1::JobState> Store::FinishJob(const v1::Lease& lease,
                                              v1::JobState outcome,
                                              const std::string& error) {
  MIXCAL_RETURN_IF_ERROR(ValidateOutcome(outcome));
  RequestLock lock(this);
  Transaction txn(db_.get());
  MIXCAL_RETURN_IF_ERROR(txn.Begin());
  MIXCAL_ASSIGN_OR_RETURN(v1::JobState state,
                          FinishLocked(lease, outcome, error));
  MIXCAL_RETURN_IF_ERROR(txn.Commit());
  return state;
}

absl::StatusOr<v1::JobState> Store::FinishLocked(const v1::Lease& lease,
                                                 v1::JobState outcome,
                                                 const std::string& error) {
  MIXCAL_ASSIGN_OR_RETURN(v1::Job job, GetJobLocked(lease.job_id()));
  if (job.attempt() != lease.attempt()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "stale lease: job ", job.id(), " attempt ", lease.attempt(),
        " is not current (attempt ", job.attempt(), ")"));
  }
  if (job.state() == v1::CANCELLED || job.state() == outcome) {
    return job.state();  // repeated, or cancelled by a person meanwhile
  }
  if (job.state() != v1::RUNNING) {
    return absl::FailedPreconditionError(absl::StrCat(
        "stale lease: job ", job.id(), " is ", v1::JobState_Name(job.state())));
  }
  MIXCAL_ASSIGN_OR_RETURN(CachedStatement s,
                          db_->Cached("UPDATE jobs SET state = ?, error = ?, "
                                      "finished_at = ?, lease_expires_at = 0 "
                                      "WHERE id = ?"));
  MIXCAL_RETURN_IF_ERROR(s->Bind(1, static_cast<int>(outcome))
                             .Bind(2, error.substr(0, 4096))
                             .Bind(3, clock_->NowMicros())
                             .Bind(4, job.id())
                             .Run());
  std::string kind = absl::AsciiStrToLower(v1::JobState_Name(outcome));
  MIXCAL_RETURN_IF_ERROR(
      AddEvent(job.sweep_id(), job.id(), kind, error.substr(0, 4096)));
  MIXCAL_RETURN_IF_ERROR(UpdateSweepState(job.sweep_id()));
  return outcome;
}

absl::StatusOr<std::vector<v1::EpochMetrics>> Store::QueryMetrics(
    const v1::MetricsFilter& f, std::string* next_page_token) {
  const int page = f.page_size() == 0 ? 1000 : static_cast<int>(f.page_size());
  if (page < 1 || page > 10000) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size must be in [1, 10000], got ", f.page_size()));
  }
  if (!f.split().empty() && !ValidSplitName(f.split())) {
    return absl::InvalidArgumentError(
        absl::StrCat("split \"", f.split(), "\" is not a split name"));
  }
  int64_t after_job = 0, after_epoch = 0;
  std::string after_split;
  if (!f.page_token().empty()) {
    std::vector<std::string> parts = absl::StrSplit(f.page_token(), ':');
    if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &after_job) ||
        !absl::SimpleAtoi(parts[1], &after_epoch)) {
      return absl::InvalidArgumentError(
          "page_token is not one this store gave out");
    }
    after_split = parts[2];
  }
  std::string sql = absl::StrCat(
      "SELECT ", kMetricColumns,
      " FROM epoch_metrics m JOIN jobs j ON j.id = m.job_id WHERE 1 = 1");
  // Numbers are formatted in; strings are bound.
  if (f.sweep_id() > 0)
    absl::StrAppend(&sql, " AND j.sweep_id = ", f.sweep_id());
  if (f.job_ids_size() > 0) {
    std::vector<int64_t> ids(f.job_ids().begin(), f.job_ids().end());
    absl::StrAppend(&sql, " AND m.job_id IN (", absl::StrJoin(ids, ","), ")");
  }
  if (!f.method().empty()) absl::StrAppend(&sql, " AND j.method = ?1");
  if (f.has_value_min()) absl::StrAppend(&sql, " AND j.value >= ?2");
  if (f.has_value_max()) absl::StrAppend(&sql, " AND j.value <= ?3");
  if (f.seeds_size() > 0) {
    std::vector<uint64_t> seeds(f.seeds().begin(), f.seeds().end());
    absl::StrAppend(&sql, " AND j.seed IN (", absl::StrJoin(seeds, ","), ")");
  }
  if (!f.split().empty()) absl::StrAppend(&sql, " AND m.split = ?4");
  if (f.epoch_min() > 0)
    absl::StrAppend(&sql, " AND m.epoch >= ", f.epoch_min());
  if (f.epoch_max() > 0)
    absl::StrAppend(&sql, " AND m.epoch <= ", f.epoch_max());
  if (!f.page_token().empty())
    absl::StrAppend(&sql, " AND (m.job_id, m.epoch, m.split) > (?5, ?6, ?7)");
  absl::StrAppend(&sql, " ORDER BY m.job_id, m.epoch, m.split LIMIT ",
                  page + 1);

  RequestLock lock(this);
  MIXCAL_ASSIGN_OR_RETURN(Statement s, db_->Prepare(sql));
  if (!f.method().empty()) {
    absl::StatusOr<core::MethodKind> kind = core::ParseMethod(f.method());
    s.Bind(1, kind.ok() ? std::string(core::Name(*kind)) : f.method());
  }
  if (f.has_value_min()) s.Bind(2, f.value_min());
  if (f.has_value_max()) s.Bind(3, f.value_max());
  if (!f.split().empty()) s.Bind(4, f.split());
  if (!f.page_token().empty())
    s.Bind(5, after_job).Bind(6, after_epoch).Bind(7, after_split);
  std::vector<v1::EpochMetrics> rows;
  next_page_token->clear();
  while (true) {
    MIXCAL_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    if (static_cast<int>(rows.size()) == page) {
      const v1::EpochMetrics& last = rows.back();
      *next_page_token =
          absl::StrCat(last.job_id(), ":", last.epoch(), ":", last.split());
      break;
    }
    rows.push_back(MetricsFromRow(s));
  }
  if (f.include_bins()) {
    for (v1::EpochMetrics& m : rows) MIXCAL_RETURN_IF_ERROR(ReadBins(&m));
  }
  return rows;
}

absl::StatusOr<std::vector<v1::SummaryRow>> Store::SummarizeSweep(
    int64_t sweep_id, const v1::SummaryPoint& at, const std::string& split) {
  if (!split.empty() && !ValidSplitName(split)) {
    return absl::InvalidArgumentError(
        absl::StrCat("split \"", split, "\" is not a split name"));
  }
  // Which epoch of each job to read, as SQL yielding (job_id, epoch).
  std::string chosen;
  if (at.at_case() == v1::SummaryPoint::kEpoch) {
    if (at.epoch() < 1)
      return absl::InvalidArgumentError("at.epoch must be at least 1");
    chosen = absl::StrCat("SELECT id AS job_id, ", at.epoch(),
                          " AS epoch FROM jobs WHERE sweep_id = ?1");
  } else if (at.at_case() == v1::SummaryPoint::kBestBy) {
    const MetricColumn* col = nullptr;
    for (const MetricColumn& c : SummaryColumns())
      if (at.best_by() == c.name) col = &c;
    if (col == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("at.best_by must be one of ",
                       absl::StrJoin(SummaryMetricNames(), "|"), ", got \"",
                       at.best_by(), "\""));
    }
    const std::string best_split =
        at.best_split().empty() ? "test" : at.best_split();
    if (!ValidSplitName(best_split)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "at.best_split \"", best_split, "\" is not a split name"));
    }
    // SQLite fills the bare column `epoch` from the row holding MIN()/MAX().
    chosen = absl::StrCat(
        "SELECT m.job_id AS job_id, m.epoch AS epoch, ",
        col->higher_is_better ? "MAX" : "MIN", "(m.", col->name,
        ") FROM epoch_metrics m JOIN jobs j ON j.id = m.job_id "
        "WHERE j.sweep_id = ?1 AND m.split = '",
        best_split, "' AND m.", col->name, " IS NOT NULL GROUP BY m.job_id");
  } else {
    chosen =
        "SELECT id AS job_id, last_epoch AS epoch FROM jobs WHERE sweep_id = "
        "?1 AND last_epoch > 0";
  }
  std::string sql = absl::StrCat(
      "SELECT j.method, j.value, m.split, m.epoch, m.accuracy, m.ece, m.oe, "
      "m.mce, m.nll, "
      "m.brier, m.adaptive_ece, m.mean_confidence, m.mean_entropy, "
      "m.temperature, m.auroc, "
      "m.train_loss FROM (",
      chosen,
      ") c JOIN jobs j ON j.id = c.job_id "
      "JOIN epoch_metrics m ON m.job_id = c.job_id AND m.epoch = c.epoch",
      split.empty() ? "" : " WHERE m.split = ?2", " ORDER BY j.id, m.split");

  RequestLock lock(this);
  MIXCAL_RETURN_IF_ERROR(GetSweepLocked(sweep_id).status());
  MIXCAL_ASSIGN_OR_RETURN(Statement s, db_->Prepare(sql));
  s.Bind(1, sweep_id);
  if (!split.empty()) s.Bind(2, split);

  struct Group {
    v1::SummaryRow row;
    std::vector<std::vector<double>> values;  // per metric
  };
  std::vector<Group> groups;
  std::map<std::tuple<std::string, double, std::string>, size_t> index;
  const size_t n_metrics = SummaryColumns().size();
  while (true) {
    MIXCAL_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    auto key = std::make_tuple(s.Text(0), s.Double(1), s.Text(2));
    auto [it, inserted] = index.emplace(key, groups.size());
    if (inserted) {
      Group g;
      g.row.set_method(std::get<0>(key));
      g.row.set_value(std::get<1>(key));
      g.row.set_split(std::get<2>(key));
      g.values.resize(n_metrics);
      groups.push_back(std::move(g));
    }
    Group& g = groups[it->second];
    g.row.set_seeds(g.row.seeds() + 1);
    g.row.add_epochs(static_cast<uint32_t>(s.Int(3)));
    for (size_t k = 0; k < n_metrics; ++k) {
      if (!s.IsNull(4 + static_cast<int>(k)))
        g.values[k].push_back(s.Double(4 + static_cast<int>(k)));
    }
  }
  std::vector<v1::SummaryRow> out;
  for (Group& g : groups) {
    for (size_t k = 0; k < n_metrics; ++k) {
      const std::vector<double>& v = g.values[k];
      if (v.empty()) continue;
      double mean = 0;
      for (double x : v) mean += x;
      mean /= v.size();
      double ss = 0;
      for (double x : v) ss += (x - mean) * (x - mean);
      v1::MetricStat* stat = g.row.add_stats();
      stat->set_metric(SummaryColumns()[k].name);
      stat->set_mean(mean);
      stat->set_std(v.size() > 1 ? std::sqrt(ss / (v.size() - 1)) : 0.0);
      stat->set_count(static_cast<uint32_t>(v.size()));
    }
    out.push_back(std::move(g.row));
  }
  return out;
}

absl::StatusOr<v1::EpochMetrics> Store::GetReliability(
    int64_t job_id, uint32_t epoch, const std::string& split_in) {
  const std::string split = split_in.empty() ? "test" : split_in;
  if (!ValidSplitName(split)) {
    return absl::InvalidArgumentError(
        absl::StrCat("split \"", split, "\" is not a split name"));
  }
  RequestLock lock(this);
  MIXCAL_ASSIGN_OR_RETURN(v1::Job job, GetJobLocked(job_id));
  if (epoch == 0) epoch = job.last_epoch();
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement s,
      db_->Cached(absl::StrCat("SELECT ", kMetricColumns,
                               " FROM epoch_metrics m JOIN jobs j ON "
                               "j.id = m.job_id WHERE m.job_id = ? AND m.epoch "
                               "= ? AND m.split = ?")));
  s->Bind(1, job_id).Bind(2, epoch).Bind(3, split);
  MIXCAL_ASSIGN_OR_RETURN(bool found, s->Step());
  if (!found) {
    return absl::NotFoundError(absl::StrCat(
        "job ", job_id, " has no metrics for epoch ", epoch, " split ", split));
  }
  v1::EpochMetrics m = MetricsFromRow(*s);
  MIXCAL_RETURN_IF_ERROR(ReadBins(&m));
  std::vector<core::ReliabilityBin> bins;
  for (const v1::ReliabilityBin& bin : m.bins())
    bins.push_back({bin.count(), bin.confidence_sum(), bin.correct()});
  // The bins are the source of truth.
  core::Calibration c = core::CalibrationFromBins(bins);
  m.set_ece(c.ece);
  m.set_mce(c.mce);
  m.set_oe(c.oe);
  return m;
}

absl::StatusOr<std::vector<v1::Event>> Store::ListEvents(int64_t sweep_id,
                                                         int64_t job_id,
                                                         int64_t after_id,
                                                         int limit) {
  std::string sql =
      "SELECT id, time, sweep_id, job_id, kind, message FROM events WHERE id > "
      "?1";
  if (sweep_id > 0) absl::StrAppend(&sql, " AND sweep_id = ", sweep_id);
  if (job_id > 0) absl::StrAppend(&sql, " AND job_id = ", job_id);
  absl::StrAppend(&sql, " ORDER BY id LIMIT ",
                  std::clamp(limit <= 0 ? 1000 : limit, 1, 10000));
  RequestLock lock(this);
  MIXCAL_ASSIGN_OR_RETURN(Statement s, db_->Prepare(sql));
  s.Bind(1, after_id);
  std::vector<v1::Event> out;
  while (true) {
    MIXCAL_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    v1::Event e;
    e.set_id(s.Int(0));
    e.set_time_us(s.Int(1));
    e.set_sweep_id(s.Int(2));
    e.set_job_id(s.Int(3));
    e.set_kind(s.Text(4));
    e.set_message(s.Text(5));
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace mixcal::storage
