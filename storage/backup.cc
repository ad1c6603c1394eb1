#include "storage/backup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "storage/internal/sqlite.h"

namespace mixcal::storage {
namespace {

namespace fs = std::filesystem;

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

absl::Status FsyncPath(const std::string& path, bool directory) {
  const int fd =
      open(path.c_str(),
           (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return Errno("open " + path);
  const int rc = fsync(fd);
  close(fd);
  return rc == 0 ? absl::OkStatus() : Errno("fsync " + path);
}

// The first `bytes` of `from` into a new `to` (mode 0600), fsynced.
absl::Status CopyPrefix(const std::string& from, const std::string& to,
                        int64_t bytes) {
  const int in = open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return Errno("open " + from);
  const int out =
      open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out < 0) {
    close(in);
    return Errno("create " + to);
  }
  std::vector<char> buf(1 << 20);
  int64_t left = bytes;
  absl::Status s;
  while (left > 0 && s.ok()) {
    const ssize_t n = read(in, buf.data(), std::min<int64_t>(left, buf.size()));
    if (n < 0) {
      if (errno == EINTR) continue;
      s = Errno("read " + from);
    } else if (n == 0) {
      s = absl::DataLossError(
          absl::StrCat(from, " is ", bytes - left, " bytes, shorter than the ",
                       bytes, " the database's predictions refer to"));
    } else {
      for (ssize_t done = 0; done < n && s.ok();) {
        const ssize_t w = write(out, buf.data() + done, n - done);
        if (w < 0 && errno != EINTR) s = Errno("write " + to);
        if (w > 0) done += w;
      }
      left -= n;
    }
  }
  if (s.ok() && fsync(out) != 0) s = Errno("fsync " + to);
  close(in);
  close(out);
  return s;
}

std::string UtcStamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

}  // namespace

absl::StatusOr<BackupInfo> WriteBackup(const std::string& db_path,
                                       const std::string& dest, int keep) {
  if (db_path.empty() || db_path == ":memory:")
    return absl::FailedPreconditionError(
        "an in-memory store has no file to back up");
  if (keep < 1)
    return absl::InvalidArgumentError(
        absl::StrCat("keep must be >= 1, got ", keep));
  const auto start = std::chrono::steady_clock::now();
  std::error_code ec;
  fs::create_directories(dest, ec);
  if (ec)
    return absl::FailedPreconditionError(
        absl::StrCat("backup folder ", dest, ": ", ec.message()));
  const std::string name = fs::path(db_path).filename().string();
  std::string stamp = UtcStamp();
  // Two backups within a second: the second gets a suffix.
  for (int i = 1; fs::exists(fs::path(dest) / ("mixcal-" + stamp)); ++i)
    stamp = absl::StrCat(UtcStamp(), "-", i);
  const fs::path partial = fs::path(dest) / (".partial-mixcal-" + stamp);
  const fs::path final_dir = fs::path(dest) / ("mixcal-" + stamp);
  fs::remove_all(partial, ec);
  fs::create_directory(partial, ec);
  if (ec)
    return absl::FailedPreconditionError(
        absl::StrCat("create ", partial.string(), ": ", ec.message()));
  chmod(partial.c_str(), 0700);
  auto fail = [&](absl::Status s) {
    std::error_code ignored;
    fs::remove_all(partial, ignored);
    return s;
  };

  const std::string db_copy = (partial / name).string();
  {
    // A connection of its own, read-only: a WAL reader, never a writer's
    // obstacle.
    sqlite3* raw = nullptr;
    int rc =
        sqlite3_open_v2(db_path.c_str(), &raw,
                        SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      absl::Status s = SqliteError(raw, rc, "open " + db_path);
      sqlite3_close(raw);
      return fail(s);
    }
    sqlite3_busy_timeout(raw, 5000);
    std::string sql = "VACUUM INTO '";
    for (char ch : db_copy)
      sql += ch == '\'' ? std::string("''") : std::string(1, ch);
    sql += "'";
    char* err = nullptr;
    rc = sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, &err);
    absl::Status s;
    if (rc != SQLITE_OK)
      s = SqliteError(raw, rc, err != nullptr ? err : "VACUUM INTO");
    sqlite3_free(err);
    sqlite3_close(raw);
    if (!s.ok()) return fail(s);
  }
  chmod(db_copy.c_str(), 0600);

  BackupInfo info;
  {
    absl::StatusOr<std::unique_ptr<Database>> copy = Database::Open(db_copy);
    if (!copy.ok()) return fail(copy.status());
    absl::StatusOr<Statement> check = (*copy)->Prepare("PRAGMA quick_check(1)");
    if (!check.ok()) return fail(check.status());
    absl::StatusOr<bool> row = check->Step();
    if (!row.ok()) return fail(row.status());
    if (!*row || check->Text(0) != "ok")
      return fail(absl::DataLossError(absl::StrCat(
          "the copy of ", db_path,
          " fails its check: ", *row ? check->Text(0) : "no answer")));
    // Databases from before the predictions file have no offset columns.
    int64_t end = 0;
    absl::StatusOr<Statement> has = (*copy)->Prepare(
        "SELECT COUNT(*) FROM pragma_table_info('predictions') WHERE name = "
        "'file_offset'");
    if (!has.ok()) return fail(has.status());
    absl::StatusOr<bool> has_row = has->Step();
    if (!has_row.ok()) return fail(has_row.status());
    if (*has_row && has->Int(0) > 0) {
      absl::StatusOr<Statement> q = (*copy)->Prepare(
          "SELECT COALESCE(MAX(file_offset + file_bytes), 0) FROM predictions "
          "WHERE file_offset IS NOT NULL");
      if (!q.ok()) return fail(q.status());
      absl::StatusOr<bool> r = q->Step();
      if (!r.ok()) return fail(r.status());
      end = q->Int(0);
    }
    info.predictions_bytes = end;
  }
  const std::string blobs = db_path + ".predictions";
  if (info.predictions_bytes > 0 || fs::exists(blobs)) {
    absl::Status s =
        CopyPrefix(blobs, (partial / (name + ".predictions")).string(),
                   info.predictions_bytes);
    if (!s.ok()) return fail(s);
  }
  info.database_bytes = static_cast<int64_t>(fs::file_size(db_copy, ec));
  if (absl::Status s = FsyncPath(db_copy, false); !s.ok()) return fail(s);
  if (absl::Status s = FsyncPath(partial.string(), true); !s.ok())
    return fail(s);
  fs::rename(partial, final_dir, ec);
  if (ec)
    return fail(absl::InternalError(
        absl::StrCat("rename to ", final_dir.string(), ": ", ec.message())));
  FsyncPath(dest, true).IgnoreError();
  info.dir = final_dir.string();

  // The newest `keep` stay (names sort by time).
  std::vector<fs::path> all;
  for (const auto& e : fs::directory_iterator(dest, ec))
    if (e.is_directory() &&
        e.path().filename().string().rfind("mixcal-", 0) == 0)
      all.push_back(e.path());
  std::sort(all.begin(), all.end());
  for (size_t i = 0; i + keep < all.size(); ++i) fs::remove_all(all[i], ec);
  info.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  return info;
}

}  // namespace mixcal::storage
