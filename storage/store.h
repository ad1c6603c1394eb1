#ifndef MIXCAL_STORAGE_STORE_H_
#define MIXCAL_STORAGE_STORE_H_

// The coordinator's state in one SQLite file (DESIGN.md section 4), as
// components over one connection, each owning one concern:
//
//   sweeps()    SweepBook     sweeps and jobs as people see them
//   queue()     JobQueue      workers, leases, heartbeats, lease expiry
//   reports()   ReportLog     epochs, checkpoints and finishes from workers
//   metrics()   MetricReader  metric queries, summaries, predictions, events
//   launches()  Launches      worker tasks started through a batch scheduler
//   files()     FileBook      uploaded models and datasets, by SHA-256
//
//   MIXCAL_ASSIGN_OR_RETURN(auto store, Store::Open({.path = "mixcal.db"}));
//   MIXCAL_ASSIGN_OR_RETURN(v1::Sweep sweep,
//   store->sweeps().CreateSweep(spec));
//
// Store itself opens the file (checks, WAL, migrations, the background
// checkpointer, the predictions file beside it) and owns the components.
// Thread-safe: the components share one connection, calls serialised by
// its lock (internal/connection.h). Several Store objects (processes) may
// open the same file; SQLite's WAL lets readers run while one writes, and
// every multi-row write is one transaction, so a reader never sees half of
// one. Protobuf messages are the record types; no gRPC here.

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/clock.h"
#include "storage/env.h"
#include "storage/file_book.h"
#include "storage/job_queue.h"
#include "storage/launches.h"
#include "storage/metric_reader.h"
#include "storage/report_log.h"
#include "storage/sweep_book.h"

namespace mixcal::storage {

class Checkpointer;
class Connection;

// Whether `s` is the store refusing a write because its file's filesystem
// is full (ResourceExhausted, naming the file), as against other
// ResourceExhausted answers such as a submitter's quota.
bool IsStorageFull(const absl::Status& s);

struct StoreOptions {
  std::string path;        // a file, or ":memory:"
  Clock* clock = nullptr;  // default SystemClock()
  Env* env = nullptr;  // the files beside the database; default DefaultEnv()
  int busy_timeout_ms = 10000;
  // Migrate only up to this schema version (tests of migrations); 0 = latest.
  int migrate_to = 0;
  // Run SQLite's quick_check when opening, refusing a damaged file (seconds
  // on a file of gigabytes: a flag of the coordinator can skip it).
  bool check_integrity = true;
};

class Store {
 public:
  // Opens or creates the file (created readable by its owner only).
  // Refused, with the file named: a file that is not SQLite or is damaged
  // (DataLoss), another program's SQLite file (FailedPrecondition: it is
  // never extended with mixcal's tables), a file of a newer mixcal.
  static absl::StatusOr<std::unique_ptr<Store>> Open(
      const StoreOptions& options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  SweepBook& sweeps() { return *sweeps_; }
  JobQueue& queue() { return *queue_; }
  ReportLog& reports() { return *reports_; }
  MetricReader& metrics() { return *metrics_; }
  Launches& launches() { return *launches_; }
  FileBook& files() { return *files_; }

  // While one lives, the report writer waits (up to about 10 ms a batch)
  // for other requests to go first: a caller making several requests in a
  // row (the dispatcher leasing jobs to waiting workers) keeps its turn.
  class PriorityScope {
   public:
    explicit PriorityScope(Store* s);
    ~PriorityScope();
    PriorityScope(const PriorityScope&) = delete;
    PriorityScope& operator=(const PriorityScope&) = delete;

   private:
    Store* const s_;
  };

  // The schema version of the open file.
  static int LatestSchemaVersion();
  absl::StatusOr<int> SchemaVersion();

 private:
  Store(std::unique_ptr<Connection> connection, std::string files_dir);
  absl::Status Migrate(int target);

  const std::unique_ptr<Connection> connection_;
  std::unique_ptr<Checkpointer> checkpointer_;  // null for ":memory:"
  const std::unique_ptr<SweepBook> sweeps_;
  const std::unique_ptr<JobQueue> queue_;
  const std::unique_ptr<ReportLog> reports_;
  const std::unique_ptr<MetricReader> metrics_;
  const std::unique_ptr<Launches> launches_;
  const std::unique_ptr<FileBook> files_;
};

}  // namespace mixcal::storage

#endif  // MIXCAL_STORAGE_STORE_H_
