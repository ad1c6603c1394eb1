#include "storage/internal/sqlite.h"

#include <chrono>
#include <map>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace mixcal::storage {

absl::Status SqliteError(sqlite3* db, int rc, absl::string_view what) {
  std::string msg = absl::StrCat(
      "sqlite: ", what, ": ", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc),
      " (code ", db ? sqlite3_extended_errcode(db) : rc, ")");
  // Trouble with the file itself names the file: an operator reading the
  // log must know which disk to look at.
  const char* file = db != nullptr ? sqlite3_db_filename(db, "main") : nullptr;
  if (file != nullptr && *file != '\0') {
    switch (rc & 0xff) {
      case SQLITE_FULL:
        msg = absl::StrCat("the database ", file,
                           " is full (no space left on its filesystem); "
                           "writes are refused until space is freed: ",
                           msg);
        break;
      case SQLITE_IOERR:
      case SQLITE_CORRUPT:
      case SQLITE_NOTADB:
      case SQLITE_READONLY:
      case SQLITE_CANTOPEN:
        msg = absl::StrCat("the database ", file, ": ", msg);
        break;
      default:
        break;
    }
  }
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(msg);
    case SQLITE_CONSTRAINT:
      return absl::AlreadyExistsError(msg);
    case SQLITE_FULL: {
      absl::Status full = absl::ResourceExhaustedError(msg);
      full.SetPayload(kStorageFullPayload, absl::Cord("full"));
      return full;
    }
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(msg);
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
      return absl::PermissionDeniedError(msg);
    default:
      return absl::InternalError(msg);
  }
}

absl::StatusOr<bool> Statement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteError(db_, rc, sqlite3_sql(stmt_));
}

absl::Status Statement::Run() {
  while (true) {
    absl::StatusOr<bool> row = Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::OkStatus();
  }
}

absl::StatusOr<std::unique_ptr<Database>> Database::Open(
    const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
      nullptr);
  if (rc != SQLITE_OK) {
    absl::Status s = SqliteError(db, rc, absl::StrCat("open ", path));
    sqlite3_close(db);
    return s;
  }
  return std::unique_ptr<Database>(new Database(db));
}

Database::~Database() {
  cache_.clear();  // statements before the connection
  sqlite3_close(db_);
}

absl::Status Database::Exec(const std::string& sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    absl::Status s = SqliteError(db_, rc, err ? err : sql);
    sqlite3_free(err);
    return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<Statement> Database::Prepare(absl::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()),
                              &stmt, nullptr);
  if (rc != SQLITE_OK)
    return SqliteError(db_, rc, absl::StrCat("prepare ", sql));
  return Statement(db_, stmt);
}

absl::StatusOr<CachedStatement> Database::Cached(absl::string_view sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) {
    it->second->Reset();
    return CachedStatement(it->second.get());
  }
  absl::StatusOr<Statement> s = Prepare(sql);
  if (!s.ok()) return s.status();
  auto owned = std::make_unique<Statement>(std::move(*s));
  Statement* raw = owned.get();
  cache_.emplace(std::string(sql), std::move(owned));
  return CachedStatement(raw);
}

absl::StatusOr<std::unique_ptr<Checkpointer>> Checkpointer::Start(
    const std::string& path, int wake_pages, int limit_pages, int interval_ms) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status s =
        SqliteError(db, rc, absl::StrCat("open ", path, " for checkpoints"));
    sqlite3_close(db);
    return s;
  }
  // A connection learns that the file is in WAL mode when it first reads
  // it; until then sqlite3_wal_checkpoint_v2 does nothing (and says so only
  // by returning -1 frames).
  rc = sqlite3_exec(db, "SELECT COUNT(*) FROM sqlite_master", nullptr, nullptr,
                    nullptr);
  if (rc != SQLITE_OK) {
    absl::Status s =
        SqliteError(db, rc, absl::StrCat("read ", path, " for checkpoints"));
    sqlite3_close(db);
    return s;
  }
  return std::unique_ptr<Checkpointer>(
      new Checkpointer(db, wake_pages, limit_pages, interval_ms));
}

Checkpointer::Checkpointer(sqlite3* db, int wake_pages, int limit_pages,
                           int interval_ms)
    : db_(db),
      wake_pages_(wake_pages),
      limit_pages_(limit_pages),
      interval_ms_(interval_ms) {
  thread_ = std::thread([this] { Loop(); });
}

Checkpointer::~Checkpointer() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
  sqlite3_close(db_);
}

void Checkpointer::Attach(Database* writer) {
  sqlite3_wal_hook(writer->raw(), &Checkpointer::OnCommit, this);
}

int Checkpointer::OnCommit(void* self, sqlite3* writer, const char*,
                           int pages) {
  auto* c = static_cast<Checkpointer*>(self);
  if (pages >= c->limit_pages_) {
    sqlite3_wal_checkpoint_v2(writer, nullptr, SQLITE_CHECKPOINT_PASSIVE,
                              nullptr, nullptr);
  } else if (pages >= c->wake_pages_) {
    absl::MutexLock lock(&c->mu_);
    c->wake_ = true;
  }
  return SQLITE_OK;
}

void Checkpointer::Loop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return wake_ || stop_;
      };
      mu_.AwaitWithTimeout(absl::Condition(&ready),
                           absl::Milliseconds(interval_ms_));
      if (stop_) return;
      wake_ = false;
    }
    // Errors (BUSY while another checkpoint runs) are harmless: the next
    // round tries again.
    sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr,
                              nullptr);
  }
}

}  // namespace mixcal::storage
