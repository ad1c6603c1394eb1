#include "storage/store.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "storage/internal/blob_file.h"
#include "storage/internal/connection.h"
#include "storage/internal/job_states.h"
#include "storage/internal/rows.h"
#include "storage/internal/schema.h"
#include "storage/internal/sqlite.h"

namespace mixcal::storage {

bool IsStorageFull(const absl::Status& s) {
  return absl::IsResourceExhausted(s) &&
         s.GetPayload(kStorageFullPayload).has_value();
}

int Store::LatestSchemaVersion() {
  return static_cast<int>(Migrations().size());
}

Store::Store(std::unique_ptr<Connection> connection, std::string files_dir)
    : connection_(std::move(connection)),
      sweeps_(std::make_unique<SweepBook>(*connection_)),
      queue_(std::make_unique<JobQueue>(*connection_)),
      reports_(std::make_unique<ReportLog>(*connection_)),
      metrics_(std::make_unique<MetricReader>(*connection_)),
      launches_(std::make_unique<Launches>(*connection_)),
      files_(std::make_unique<FileBook>(*connection_, std::move(files_dir))) {}

Store::~Store() {
  checkpointer_.reset();  // stops its thread before the writer closes
}

Store::PriorityScope::PriorityScope(Store* s) : s_(s) {
  s_->connection_->AddWaiting(1);
}
Store::PriorityScope::~PriorityScope() { s_->connection_->AddWaiting(-1); }

namespace {

// Creates a missing store file readable by its owner only; SQLite gives its
// -wal and -shm files the same mode.
absl::Status CreatePrivately(const std::string& path) {
  const int fd =
      ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ::close(fd);
    return absl::OkStatus();
  }
  if (errno == EEXIST) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat("cannot create it (", std::strerror(errno), ")"));
}

// What is in the file already: whether it has tables, and whether one of
// them is mixcal's schema_version.
struct Contents {
  std::vector<std::string> tables;
  bool mixcal = false;
};
absl::StatusOr<Contents> ReadContents(Database* db) {
  MIXCAL_ASSIGN_OR_RETURN(
      Statement s, db->Prepare("SELECT name FROM sqlite_master WHERE type = "
                               "'table' ORDER BY name LIMIT 20"));
  Contents c;
  while (true) {
    MIXCAL_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    c.tables.push_back(s.Text(0));
    if (c.tables.back() == "schema_version") c.mixcal = true;
  }
  return c;
}

absl::Status QuickCheck(Database* db) {
  MIXCAL_ASSIGN_OR_RETURN(Statement s, db->Prepare("PRAGMA quick_check(5)"));
  std::vector<std::string> problems;
  while (true) {
    MIXCAL_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    if (s.Text(0) != "ok") problems.push_back(s.Text(0));
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::DataLossError(absl::StrCat(
      "is damaged (quick_check: ", absl::StrJoin(problems, "; "),
      "); restore a backup, or skip the check to serve what can be read"));
}

// Whether the filesystem holding `path` has no space left for an ordinary
// user (statvfs's f_bavail).
bool FilesystemFull(const std::string& path) {
  struct statvfs fs {};
  if (::statvfs(path.c_str(), &fs) != 0) return false;
  return static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize < 64 * 1024;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::Open(
    const StoreOptions& options) {
  if (options.path.empty())
    return absl::InvalidArgumentError("store path must not be empty");
  // Every error names the file: a coordinator that will not start says
  // which file is wrong.
  const bool file = options.path != ":memory:";
  auto named = [&](const absl::Status& s) {
    return absl::Status(
        s.code(), absl::StrCat("store file ", options.path, ": ", s.message()));
  };
  if (file) {
    if (absl::Status s = CreatePrivately(options.path); !s.ok())
      return named(s);
  }
  absl::StatusOr<std::unique_ptr<Database>> opened =
      Database::Open(options.path);
  if (!opened.ok()) return named(opened.status());
  std::unique_ptr<Database> db = *std::move(opened);
  sqlite3_busy_timeout(db->raw(), options.busy_timeout_ms);
  absl::StatusOr<Contents> contents = ReadContents(db.get());
  if (!contents.ok() && file && FilesystemFull(options.path)) {
    // SQLite could not create the log (-wal) or its index (-shm) beside
    // the file: the filesystem is full, the file itself may be fine.
    return named(absl::ResourceExhaustedError(
        "cannot be opened: its filesystem is full, and SQLite needs room for "
        "its -wal and -shm files beside it; free some space and start "
        "again"));
  }
  if (!contents.ok()) {
    // "file is not a database": truncated, overwritten or not SQLite.
    return named(absl::DataLossError(absl::StrCat(
        "cannot be read as a SQLite database (", sqlite3_errmsg(db->raw()),
        "): give the path of a mixcal store, or of a new file")));
  }
  if (!contents->tables.empty() && !contents->mixcal) {
    return named(absl::FailedPreconditionError(absl::StrCat(
        "is another program's SQLite file (tables ",
        absl::StrJoin(contents->tables, ", "),
        "); refusing to add mixcal's tables to it: give a new file")));
  }
  if (file && options.check_integrity && !contents->tables.empty()) {
    if (absl::Status s = QuickCheck(db.get()); !s.ok()) return named(s);
  }
  if (file) {
    if (absl::Status s = db->Exec("PRAGMA journal_mode=WAL"); !s.ok())
      return named(s);
  }
  // NORMAL in WAL mode: a committed transaction survives the process being
  // killed; only an OS crash or power loss can drop the last commits.
  if (absl::Status s = db->Exec("PRAGMA synchronous=NORMAL"); !s.ok())
    return named(s);
  if (absl::Status s = db->Exec("PRAGMA foreign_keys=ON"); !s.ok())
    return named(s);
  std::unique_ptr<BlobFile> blobs;
  if (file) {
    absl::StatusOr<std::unique_ptr<BlobFile>> opened_blobs =
        BlobFile::Open(options.env != nullptr ? options.env : DefaultEnv(),
                       options.path + ".predictions");
    if (!opened_blobs.ok()) return named(opened_blobs.status());
    blobs = *std::move(opened_blobs);
  }
  auto store = std::unique_ptr<Store>(
      new Store(std::make_unique<Connection>(
                    std::move(db), options.clock ? options.clock : SystemClock(),
                    std::move(blobs)),
                file ? options.path + ".files" : ""));
  {
    RequestLock lock(*store->connection_);
    if (absl::Status s =
            store->Migrate(options.migrate_to > 0 ? options.migrate_to
                                                  : LatestSchemaVersion());
        !s.ok()) {
      return named(s);
    }
    if (options.migrate_to == 0) {
      if (absl::Status s = AddMetricColumns(store->connection_->db());
          !s.ok()) {
        return named(s);
      }
    }
    if (file) {
      // Checkpoints run mostly beside requests, not inside whichever commit
      // crosses the threshold (that cost a next-job p99 of 4 ms;
      // docs/benchmarks.md). Attach replaces the auto-checkpoint's hook.
      absl::StatusOr<std::unique_ptr<Checkpointer>> c =
          Checkpointer::Start(options.path);
      if (!c.ok()) return named(c.status());
      store->checkpointer_ = *std::move(c);
      store->checkpointer_->Attach(store->connection_->db());
    }
  }
  return store;
}

absl::StatusOr<int> Store::SchemaVersion() {
  RequestLock lock(*connection_);
  Database* db = connection_->db();
  MIXCAL_ASSIGN_OR_RETURN(
      Statement s, db->Prepare("SELECT MAX(version) FROM schema_version"));
  MIXCAL_ASSIGN_OR_RETURN(bool row, s.Step());
  return row ? static_cast<int>(s.Int(0)) : 0;
}

absl::Status Store::Migrate(int target) {
  Database* db = connection_->db();
  // Read the version without a write lock: opening an up-to-date file must
  // not wait for (or block) a busy writer in another process.
  auto read_version = [&]() -> absl::StatusOr<int> {
    MIXCAL_ASSIGN_OR_RETURN(
        Statement t,
        db->Prepare("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' "
                    "AND name = 'schema_version'"));
    MIXCAL_RETURN_IF_ERROR(t.Step().status());
    if (t.Int(0) == 0) return 0;
    MIXCAL_ASSIGN_OR_RETURN(
        Statement v,
        db->Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_version"));
    MIXCAL_RETURN_IF_ERROR(v.Step().status());
    return static_cast<int>(v.Int(0));
  };
  MIXCAL_ASSIGN_OR_RETURN(int current, read_version());
  if (current > LatestSchemaVersion()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "is at schema version ", current, "; this mixcal knows versions up to ",
        LatestSchemaVersion(), ": upgrade mixcal"));
  }
  if (current >= target) return absl::OkStatus();
  Transaction txn(db);
  MIXCAL_RETURN_IF_ERROR(txn.Begin());
  // Another process may have migrated while we waited for the lock.
  MIXCAL_ASSIGN_OR_RETURN(current, read_version());
  MIXCAL_RETURN_IF_ERROR(db->Exec(
      "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"));
  for (int v = current + 1; v <= target; ++v) {
    MIXCAL_RETURN_IF_ERROR(db->Exec(Migrations()[v - 1]));
  }
  if (target > current) {
    MIXCAL_RETURN_IF_ERROR(db->Exec("DELETE FROM schema_version"));
    MIXCAL_RETURN_IF_ERROR(db->Exec(
        absl::StrCat("INSERT INTO schema_version VALUES (", target, ")")));
  }
  return txn.Commit();
}

}  // namespace mixcal::storage
