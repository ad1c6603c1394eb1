#ifndef MIXCAL_STORAGE_INTERNAL_SQLITE_H_
#define MIXCAL_STORAGE_INTERNAL_SQLITE_H_

// A thin RAII layer over the SQLite C API that speaks absl::Status.
// Internal to storage/. Not thread-safe: the Store serialises access.

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace mixcal::storage {

// A prepared statement. Bind indexes are 1-based, column indexes 0-based.
class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Statement(Statement&& other) noexcept : db_(other.db_), stmt_(other.stmt_) {
    other.stmt_ = nullptr;
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() { sqlite3_finalize(stmt_); }

  Statement& Bind(int i, int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  Statement& Bind(int i, int v) { return Bind(i, static_cast<int64_t>(v)); }
  Statement& Bind(int i, uint32_t v) {
    return Bind(i, static_cast<int64_t>(v));
  }
  Statement& Bind(int i, uint64_t v) {
    return Bind(i, static_cast<int64_t>(v));
  }
  Statement& Bind(int i, double v) {
    sqlite3_bind_double(stmt_, i, v);
    return *this;
  }
  Statement& Bind(int i, absl::string_view v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()),
                      SQLITE_TRANSIENT);
    return *this;
  }
  Statement& Bind(int i, const char* v) {
    return Bind(i, absl::string_view(v));
  }
  Statement& Bind(int i, const std::string& v) {
    return Bind(i, absl::string_view(v));
  }
  Statement& BindBlob(int i, const std::string& v) {
    sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()),
                      SQLITE_TRANSIENT);
    return *this;
  }
  Statement& BindNull(int i) {
    sqlite3_bind_null(stmt_, i);
    return *this;
  }
  Statement& Bind(int i, std::optional<double> v) {
    return v ? Bind(i, *v) : BindNull(i);
  }

  // Steps once: true when a row is ready, false when done.
  absl::StatusOr<bool> Step();
  // Steps until done (for writes).
  absl::Status Run();
  // Resets for re-use and clears bindings.
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  sqlite3_stmt* raw() { return stmt_; }

  int64_t Int(int c) const { return sqlite3_column_int64(stmt_, c); }
  double Double(int c) const { return sqlite3_column_double(stmt_, c); }
  bool IsNull(int c) const {
    return sqlite3_column_type(stmt_, c) == SQLITE_NULL;
  }
  std::string Text(int c) const {
    const unsigned char* p = sqlite3_column_text(stmt_, c);
    return p ? std::string(reinterpret_cast<const char*>(p),
                           sqlite3_column_bytes(stmt_, c))
             : std::string();
  }
  std::string Blob(int c) const {
    const void* p = sqlite3_column_blob(stmt_, c);
    return p ? std::string(static_cast<const char*>(p),
                           sqlite3_column_bytes(stmt_, c))
             : std::string();
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

// A cached statement in use: reset when it goes out of scope, so that no
// half-read statement keeps a read snapshot open (which would stop WAL
// checkpoints and let the -wal file grow without bound).
class CachedStatement {
 public:
  explicit CachedStatement(Statement* s) : s_(s) {}
  CachedStatement(CachedStatement&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
  CachedStatement(const CachedStatement&) = delete;
  CachedStatement& operator=(const CachedStatement&) = delete;
  ~CachedStatement() {
    if (s_ != nullptr) s_->Reset();
  }
  Statement* operator->() const { return s_; }
  Statement& operator*() const { return *s_; }

 private:
  Statement* s_;
};

class Database {
 public:
  // Opens (creating) `path`; ":memory:" for an in-memory database.
  static absl::StatusOr<std::unique_ptr<Database>> Open(
      const std::string& path);
  ~Database();

  absl::Status Exec(const std::string& sql);
  absl::StatusOr<Statement> Prepare(absl::string_view sql);
  // A prepared statement kept for the life of the database, reset for reuse.
  absl::StatusOr<CachedStatement> Cached(absl::string_view sql);
  // Resets every cached statement (see Transaction::Commit).
  void ResetCached() {
    for (auto& entry : cache_) sqlite3_reset(entry.second->raw());
  }
  int64_t LastInsertId() const { return sqlite3_last_insert_rowid(db_); }
  int Changes() const { return sqlite3_changes(db_); }
  sqlite3* raw() { return db_; }

 private:
  explicit Database(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::map<std::string, std::unique_ptr<Statement>, std::less<>> cache_;
};

// BEGIN IMMEDIATE ... COMMIT, rolled back when not committed.
class Transaction {
 public:
  explicit Transaction(Database* db) : db_(db) {}
  ~Transaction() {
    if (open_) db_->Exec("ROLLBACK").IgnoreError();
  }
  // BUSY is retried briefly beyond the busy timeout's own waiting: on a
  // loaded machine BEGIN IMMEDIATE was seen to fail at once (a few times in
  // thousands of transactions) while the background checkpointer worked on
  // its own connection, which the busy handler does not cover.
  absl::Status Begin() {
    absl::Status s;
    // At most about 50 ms: the caller holds the store's lock meanwhile.
    for (int attempt = 0; attempt < 50; ++attempt) {
      s = db_->Exec("BEGIN IMMEDIATE");
      if (!absl::IsUnavailable(s)) break;
      absl::SleepFor(absl::Milliseconds(1));
    }
    open_ = s.ok();
    return s;
  }
  // Resets the cached statements first: one still on a row would pin a read
  // snapshot past the commit, and the WAL could never be checkpointed.
  absl::Status Commit() {
    db_->ResetCached();
    absl::Status s = db_->Exec("COMMIT");
    if (s.ok()) open_ = false;
    return s;
  }

 private:
  Database* db_;
  bool open_ = false;
};

// Checkpoints a WAL database mostly from a thread and connection of its own,
// so that copying the log into the database rarely lands on a request.
// Attach(writer) replaces the writer's auto-checkpoint with SQLite's WAL hook:
// past `wake_pages` log pages a commit wakes this thread, which runs PASSIVE
// checkpoints (they never block the writer; it also runs every
// `interval_ms`). A background checkpoint cannot finish while commits keep
// arriving, though, and the log only restarts after a finished one; so past
// `limit_pages` the writer completes the checkpoint itself, which is cheap
// because the thread has already copied most frames, and the log restarts.
class Checkpointer {
 public:
  static absl::StatusOr<std::unique_ptr<Checkpointer>> Start(
      const std::string& path, int wake_pages = 1000, int limit_pages = 4000,
      int interval_ms = 200);
  ~Checkpointer();
  void Attach(Database* writer);

 private:
  Checkpointer(sqlite3* db, int wake_pages, int limit_pages, int interval_ms);
  static int OnCommit(void* self, sqlite3* db, const char* name, int pages);
  void Loop();

  sqlite3* db_;
  const int wake_pages_;
  const int limit_pages_;
  const int interval_ms_;
  absl::Mutex mu_;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// The Status for a SQLite result code. SQLITE_FULL carries the payload
// kStorageFullPayload (IsStorageFull in store.h).
absl::Status SqliteError(sqlite3* db, int rc, absl::string_view what);
inline constexpr char kStorageFullPayload[] = "mixcal.storage/full";

}  // namespace mixcal::storage

#endif  // MIXCAL_STORAGE_INTERNAL_SQLITE_H_
