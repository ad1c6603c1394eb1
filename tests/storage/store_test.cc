// Store: opening the file (checks, permissions, migrations), what survives
// a reopen, the write-ahead log and its background checkpointer, readers
// beside a writer.

#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "storage/internal/sqlite.h"
#include "tests/storage/store_fixture.h"

namespace mixcal::storage {
namespace {

namespace fs = std::filesystem;

TEST_F(StoreTest, DataSurvivesCloseAndReopen) {
  auto sweep = store_->sweeps().CreateSweep(Spec("persist"));
  int64_t w = Worker();
  Assignment a = Acquire(w);
  ASSERT_TRUE(
      store_->reports().ReportEpoch(a.lease, {Metrics(1, "test", 0.05)}).ok());
  ASSERT_TRUE(
      store_->reports().RecordCheckpoint(a.lease, 1, "job-1/1.pt").ok());
  store_.reset();
  store_ = OpenStore();
  auto again = store_->sweeps().GetSweep(sweep->id());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->counts().running(), 1u);
  auto job = store_->sweeps().GetJob(a.lease.job_id());
  EXPECT_EQ(job->checkpoint(), "job-1/1.pt");
  EXPECT_EQ(job->last_epoch(), 1u);
  EXPECT_EQ(job->attempt(), 1u);
  auto rel = store_->metrics().GetReliability(a.lease.job_id(), 1, "test");
  ASSERT_TRUE(rel.ok()) << rel.status();
  EXPECT_EQ(rel->bins_size(), 15);
  // The lease survives the restart: the worker can keep reporting.
  EXPECT_TRUE(
      store_->reports().ReportEpoch(a.lease, {Metrics(2, "test", 0.04)}).ok());
}

TEST(StoreOpenTest, RefusesFilesThatAreNotAHealthyMixcalStoreNamingThem) {
  const fs::path dir = fs::temp_directory_path() /
                       ("mixcal_store_open_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto open = [](const fs::path& p) {
    StoreOptions o;
    o.path = p.string();
    return Store::Open(o);
  };
  // Not SQLite at all (a truncated copy, a text file).
  const fs::path text = dir / "notes.db";
  std::ofstream(text) << std::string(5000, 'x');
  auto r = open(text);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("store file " + text.string()),
            std::string::npos)
      << r.status();
  // Another program's SQLite file is never extended with mixcal's tables.
  const fs::path foreign = dir / "other.db";
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(foreign.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE photos (id INTEGER)", nullptr,
                           nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  r = open(foreign);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("another program"), std::string::npos);
  EXPECT_NE(r.status().message().find("photos"), std::string::npos);
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(foreign.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM sqlite_master", -1, &st,
                       nullptr);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    EXPECT_EQ(sqlite3_column_int(st, 0), 1);  // still only its own table
    sqlite3_finalize(st);
    sqlite3_close(db);
  }
  // A store whose pages were overwritten in the middle.
  const fs::path damaged = dir / "damaged.db";
  {
    StoreOptions o;
    o.path = damaged.string();
    auto store = Store::Open(o);
    ASSERT_TRUE(store.ok()) << store.status();
    v1::SweepSpec spec = Spec("damage", 100);
    for (int i = 0; i < 20; ++i) {
      spec.set_name("damage-" + std::to_string(i));
      ASSERT_TRUE((*store)->sweeps().CreateSweep(spec).ok());
    }
  }
  {
    // Checkpoint the log into the file, then scribble over its middle.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(damaged.c_str(), &db), SQLITE_OK);
    sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr,
                 nullptr);
    sqlite3_close(db);
    const auto size = fs::file_size(damaged);
    ASSERT_GT(size, 64u * 4096);
    std::fstream f(damaged, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size / 2 / 4096 * 4096));
    const std::string junk(8 * 4096, '\x5a');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  r = open(damaged);
  ASSERT_FALSE(r.ok()) << "a damaged file opened";
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
  EXPECT_NE(r.status().message().find(damaged.string()), std::string::npos);
  // The check can be skipped, for a huge file one knows is sound.
  StoreOptions skip;
  skip.path = damaged.string();
  skip.check_integrity = false;
  auto skipped = Store::Open(skip);
  if (!skipped.ok()) {
    EXPECT_EQ(skipped.status().message().find("quick_check"), std::string::npos)
        << skipped.status();
  }
  fs::remove_all(dir);
}

TEST_F(StoreTest, TheFileIsCreatedReadableByItsOwnerOnly) {
  const fs::perms p = fs::status(path_).permissions();
  EXPECT_EQ(p & (fs::perms::group_all | fs::perms::others_all),
            fs::perms::none);
}

TEST_F(StoreTest, OlderSchemaMigratesKeepingData) {
  store_.reset();
  fs::remove(path_);
  store_ = OpenStore(/*migrate_to=*/1);
  ASSERT_EQ(*store_->SchemaVersion(), 1);
  // Version 1 has no events table: creating a sweep must fail there...
  EXPECT_FALSE(store_->sweeps().CreateSweep(Spec("old")).ok());
  store_.reset();
  store_ = OpenStore();
  EXPECT_EQ(*store_->SchemaVersion(), Store::LatestSchemaVersion());
  // ...and work after the migration.
  auto s = store_->sweeps().CreateSweep(Spec("new"));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(store_->metrics().ListEvents(s->id(), 0, 0, 10)->empty());
}

TEST_F(StoreTest, NewerSchemaIsRefused) {
  store_.reset();
  {
    // Pretend a newer mixcal wrote the file.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "UPDATE schema_version SET version = 99",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  StoreOptions o;
  o.path = path_;
  auto s = Store::Open(o);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("schema version 99"), std::string::npos)
      << s.status();
}

TEST_F(StoreTest, BinsOfAVersionTwoFileSurviveTheMigration) {
  store_.reset();
  fs::remove(path_);
  store_ = OpenStore(/*migrate_to=*/2);
  store_.reset();
  const int64_t job = 1;
  {
    // Rows as version 2 wrote them (SQL only: today's calls write columns
    // that version lacks): a sweep, its job, and a row per bin.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    const std::string sql = absl::StrCat(
        "INSERT INTO sweeps (id, name, spec, created_at, state, priority, "
        "max_attempts) VALUES (1, 'old', x'', 0, 1, 10, 3);",
        "INSERT INTO jobs (id, sweep_id, method, value, seed, config, state, "
        "priority, device, max_attempts, created_at) VALUES (1, 1, "
        "'baseline', 0, 0, x'', 1, 10, 'any', 3, 0);",
        "INSERT INTO epoch_metrics (job_id, epoch, split, count) VALUES (", job,
        ", 1, 'test', 100);", "INSERT INTO reliability_bins VALUES (", job,
        ", 1, 'test', 1, 30, 20.25, 25);",
        "INSERT INTO reliability_bins VALUES (", job,
        ", 1, 'test', 0, 70, 0.30000000000000004, 10);");
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  store_ = OpenStore();
  EXPECT_EQ(*store_->SchemaVersion(), Store::LatestSchemaVersion());
  auto r = store_->metrics().GetReliability(job, 1, "test");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->bins_size(), 2);
  EXPECT_EQ(r->bins(0).count(), 70);
  EXPECT_EQ(r->bins(0).confidence_sum(), 0.30000000000000004);
  EXPECT_EQ(r->bins(0).correct(), 10);
  EXPECT_EQ(r->bins(1).count(), 30);
  EXPECT_EQ(r->bins(1).confidence_sum(), 20.25);
}

TEST_F(StoreTest, WriteAheadLogStaysBoundedUnderManyTransactions) {
  // Each lease is a transaction touching ~10 pages (~40 KB of log). If any
  // statement pinned a read snapshot across COMMIT, checkpoints could not
  // complete and the log would grow by that much per lease.
  v1::SweepSpec s = Spec("wal", 1);
  s.clear_seeds();
  for (int i = 0; i < 1000; ++i) s.add_seeds(i);
  ASSERT_TRUE(store_->sweeps().CreateSweep(s).ok());
  s.set_name("wal-2");
  ASSERT_TRUE(store_->sweeps().CreateSweep(s).ok());
  int64_t w = Worker();
  for (int i = 0; i < 2000; ++i) {
    Assignment a = Acquire(w);
    ASSERT_TRUE(
        store_->reports().ReportEpoch(a.lease, {Metrics(1, "test", 0.1)}).ok());
  }
  const fs::path wal = path_ + "-wal";
  ASSERT_TRUE(fs::exists(wal));
  // Checkpoints keep it near 4000 pages (16 MB); a pinned snapshot would
  // grow it by ~40 KB a lease, past 80 MB. The margin is for a background
  // checkpointer that lags on a loaded machine.
  EXPECT_LT(fs::file_size(wal), 28u << 20) << fs::file_size(wal);
}

TEST(CheckpointerTest, CopiesTheLogIntoTheDatabaseInTheBackground) {
  const fs::path dir =
      fs::temp_directory_path() / ("mixcal_ckpt_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string path = (dir / "c.db").string();
  auto db = Database::Open(path);
  ASSERT_TRUE(db.ok()) << db.status();
  ASSERT_TRUE((*db)->Exec("PRAGMA journal_mode=WAL").ok());
  ASSERT_TRUE((*db)->Exec("CREATE TABLE t (x BLOB)").ok());
  // Wake past 10 log pages; the writer itself never checkpoints.
  auto ckpt = Checkpointer::Start(path, /*wake_pages=*/10,
                                  /*limit_pages=*/1000000,
                                  /*interval_ms=*/50);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  (*ckpt)->Attach(db->get());
  const auto before = fs::file_size(path);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE((*db)->Exec("INSERT INTO t VALUES (zeroblob(16384))").ok());
  }
  // The rows reach the database file only by a checkpoint, and only the
  // background thread runs one here.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (fs::file_size(path) < before + (256u << 10) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_GE(fs::file_size(path), before + (256u << 10))
      << "no background checkpoint copied the log";
  ckpt->reset();
  db->reset();
  fs::remove_all(dir);
}

TEST_F(StoreTest, ReadersSeeWholeReportsWhileAWriterWrites) {
  store_->sweeps().CreateSweep(Spec("concurrent", 1, 10000)).IgnoreError();
  Assignment a = Acquire(Worker());
  std::atomic<bool> done{false};
  std::atomic<int> checks{0}, torn{0};
  std::thread reader([&] {
    auto reader_store = OpenStore();  // a second connection on the same file
    ASSERT_NE(reader_store, nullptr);
    v1::MetricsFilter f;
    f.set_include_bins(true);
    std::string token;
    while (!done.load()) {
      f.set_page_size(10000);
      auto rows = reader_store->metrics().QueryMetrics(f, &token);
      ASSERT_TRUE(rows.ok()) << rows.status();
      for (const auto& r : *rows) {
        // Every stored epoch has all its splits' 15 bins, and test and
        // test_ts arrive together.
        if (r.bins_size() != 15) torn.fetch_add(1);
      }
      if (rows->size() % 2 != 0) torn.fetch_add(1);
      checks.fetch_add(1);
    }
  });
  // Write until the reader has looked 20 times while writes were going on
  // (bounded, so the test ends even on a starved machine).
  uint32_t e = 0;
  while (e < 300 || (checks.load() < 20 && e < 10000)) {
    ++e;
    ASSERT_TRUE(store_->reports()
                    .ReportEpoch(a.lease, {Metrics(e, "test", 0.1),
                                           Metrics(e, "test_ts", 0.1)})
                    .ok());
  }
  done.store(true);
  reader.join();
  EXPECT_GE(checks.load(), 20);
  EXPECT_EQ(torn.load(), 0);
  EXPECT_EQ(CountRows("test"), static_cast<int>(e));
}

}  // namespace
}  // namespace mixcal::storage
