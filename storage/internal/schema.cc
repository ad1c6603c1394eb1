#include "storage/internal/schema.h"

#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "calib/metric_table.h"

namespace mixcal::storage {

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
      // 4: a lease's unguessable token, so that only the worker that
      // acquired it can report on it. Leases from before carry none ('').
      R"sql(
ALTER TABLE jobs ADD COLUMN lease_token TEXT NOT NULL DEFAULT '';
)sql",
      // 5: attempts handed back on purpose, counted apart from failures.
      R"sql(
ALTER TABLE jobs ADD COLUMN handbacks INTEGER NOT NULL DEFAULT 0;
)sql",
      // 6: which attempt of its job wrote a metrics row (0 before), so that
      // a row's provenance can be audited: a fenced attempt's late report
      // would show as a row of an old attempt past where that attempt ended.
      R"sql(
ALTER TABLE epoch_metrics ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
)sql",
      // 7: why a worker left (out of rotation, stopped).
      R"sql(
ALTER TABLE workers ADD COLUMN state_reason TEXT NOT NULL DEFAULT '';
)sql",
      // 8: who submitted a sweep, for per-submitter quotas.
      R"sql(
ALTER TABLE sweeps ADD COLUMN submitter TEXT NOT NULL DEFAULT '';
CREATE INDEX sweeps_by_submitter ON sweeps(submitter, state);
)sql",
      // 9: where a worker runs (its scheduler's job, task and GPU).
      R"sql(
ALTER TABLE workers ADD COLUMN placement TEXT NOT NULL DEFAULT '';
)sql",
      // 10: worker tasks the coordinator submitted to a batch scheduler, so
      // that after a restart it reconciles with the scheduler instead of
      // submitting again.
      R"sql(
CREATE TABLE launches (
  id INTEGER PRIMARY KEY,
  engine TEXT NOT NULL,
  scheduler_id TEXT NOT NULL,
  device_class TEXT NOT NULL,
  tasks INTEGER NOT NULL,
  submitted_at INTEGER NOT NULL,
  ended_at INTEGER NOT NULL DEFAULT 0,
  UNIQUE (engine, scheduler_id)
);
)sql",
      // 11: kept predictions (evaluation.predictions): a split's float16
      // probabilities and int32 labels at one epoch, as the worker sent them.
      R"sql(
CREATE TABLE predictions (
  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  epoch INTEGER NOT NULL,
  split TEXT NOT NULL,
  count INTEGER NOT NULL,
  classes INTEGER NOT NULL,
  probabilities BLOB NOT NULL,
  labels BLOB NOT NULL,
  attempt INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (job_id, epoch, split)
);
)sql",
      // 12: metrics beyond top-label ECE and the estimators behind a row
      // (NULL / '' on rows from before).
      R"sql(
ALTER TABLE epoch_metrics ADD COLUMN classwise_ece REAL;
ALTER TABLE epoch_metrics ADD COLUMN l2_ce_debiased REAL;
ALTER TABLE epoch_metrics ADD COLUMN brier_reliability REAL;
ALTER TABLE epoch_metrics ADD COLUMN brier_resolution REAL;
ALTER TABLE epoch_metrics ADD COLUMN brier_uncertainty REAL;
ALTER TABLE epoch_metrics ADD COLUMN aurc REAL;
ALTER TABLE epoch_metrics ADD COLUMN fpr95 REAL;
ALTER TABLE epoch_metrics ADD COLUMN aupr REAL;
ALTER TABLE epoch_metrics ADD COLUMN estimators TEXT NOT NULL DEFAULT '';
)sql",
      // 13: a calibrated split's fitted parameters (JSON).
      R"sql(
ALTER TABLE epoch_metrics ADD COLUMN calibration TEXT NOT NULL DEFAULT '';
)sql",
      // 14: ECE's bootstrap interval and MMCE.
      R"sql(
ALTER TABLE epoch_metrics ADD COLUMN ece_low REAL;
ALTER TABLE epoch_metrics ADD COLUMN ece_high REAL;
ALTER TABLE epoch_metrics ADD COLUMN mmce REAL;
)sql",
      // 15: thresholded adaptive ECE.
      R"sql(
ALTER TABLE epoch_metrics ADD COLUMN tace REAL;
)sql",
      // 16: RMSCE and smooth ECE.
      R"sql(
ALTER TABLE epoch_metrics ADD COLUMN rmsce REAL;
ALTER TABLE epoch_metrics ADD COLUMN smece REAL;
)sql",
      // 17: kept predictions' bytes in "<db>.predictions", written once
      // (the row's blobs empty, NULL here for rows from before).
      R"sql(
ALTER TABLE predictions ADD COLUMN file_offset INTEGER;
ALTER TABLE predictions ADD COLUMN file_bytes INTEGER;
ALTER TABLE predictions ADD COLUMN file_hash INTEGER;
)sql",
      // 18: uploaded files (models, datasets), their bytes in
      // "<db>.files/<sha256>".
      R"sql(
CREATE TABLE files (
  sha256 TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  size INTEGER NOT NULL,
  stored_at INTEGER NOT NULL,
  submitter TEXT NOT NULL DEFAULT ''
);
)sql",
      // 19: the first sweep that named an uploaded file.
      R"sql(
ALTER TABLE files ADD COLUMN first_sweep INTEGER NOT NULL DEFAULT 0;
)sql",
      // 20: what a job's data turned out to be (inputs, classes, sizes,
      // normalisation), as its worker reported it.
      R"sql(
ALTER TABLE jobs ADD COLUMN data TEXT NOT NULL DEFAULT '';
)sql",
      // 21: the key a worker was given at registration (LeaveRotation
      // needs it); '' for workers registered before.
      R"sql(
ALTER TABLE workers ADD COLUMN worker_key TEXT NOT NULL DEFAULT '';
)sql",
  };
  return *m;
}

absl::Status AddMetricColumns(Database* db) {
  MIXCAL_ASSIGN_OR_RETURN(Statement info,
                          db->Prepare("PRAGMA table_info(epoch_metrics)"));
  std::set<std::string> columns;
  while (true) {
    MIXCAL_ASSIGN_OR_RETURN(bool row, info.Step());
    if (!row) break;
    columns.insert(info.Text(1));
  }
  std::vector<std::string> missing;
  for (const calib::Metric& m : calib::Metrics())
    if (columns.count(m.name) == 0) missing.push_back(m.name);
  if (missing.empty()) return absl::OkStatus();
  Transaction txn(db);
  MIXCAL_RETURN_IF_ERROR(txn.Begin());
  for (const std::string& name : missing) {
    // Another process may have added it while this one waited.
    absl::Status s = db->Exec(
        absl::StrCat("ALTER TABLE epoch_metrics ADD COLUMN ", name, " REAL"));
    if (!s.ok() &&
        s.message().find("duplicate column") == absl::string_view::npos)
      return s;
  }
  return txn.Commit();
}

}  // namespace mixcal::storage
