// The store on real SQLite files; time moves by hand.

#include "storage/store.h"

#include <sqlite3.h>

#include <atomic>
#include <functional>
#include <limits>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "calib/predictions.h"
#include "gtest/gtest.h"
#include "tests/scratch_dir.h"
#include "tests/storage/fault_env.h"
#include "storage/internal/blob_file.h"
#include "storage/internal/sqlite.h"

namespace mixcal::storage {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kLease = 30'000'000;  // 30 s

v1::SweepSpec Spec(const std::string& name, int seeds = 2) {
  v1::SweepSpec s;
  s.set_name(name);
  s.mutable_data()->set_dataset("synthetic");
  s.set_model("mlp");
  s.mutable_training()->set_epochs(3);
  s.add_methods()->set_name("baseline");
  v1::MethodSpec* m = s.add_methods();
  m->set_name("mixup");
  m->add_values(0.2);
  for (int i = 0; i < seeds; ++i) s.add_seeds(i);
  return s;
}

v1::EpochMetrics Metrics(uint32_t epoch, const std::string& split, double ece) {
  v1::EpochMetrics m;
  m.set_epoch(epoch);
  m.set_split(split);
  m.set_count(100);
  m.set_accuracy(0.9);
  m.set_ece(ece);
  m.set_nll(0.3);
  for (int b = 0; b < 15; ++b) {
    v1::ReliabilityBin* bin = m.add_bins();
    bin->set_count(b == 14 ? 100 : 0);
    bin->set_confidence_sum(b == 14 ? 97.0 : 0);
    bin->set_correct(b == 14 ? 90 : 0);
  }
  return m;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::mixcal::testing::FreshTestDir("store");
    path_ = (dir_ / "mixcal.db").string();
    store_ = OpenStore();
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }
  std::unique_ptr<Store> OpenStore(int migrate_to = 0) {
    StoreOptions o;
    o.path = path_;
    o.clock = &clock_;
    o.env = &env_;
    o.migrate_to = migrate_to;
    absl::StatusOr<std::unique_ptr<Store>> s = Store::Open(o);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }
  int64_t Worker(const std::string& device = "cpu") {
    v1::WorkerInfo w;
    w.set_host("host-a");
    w.set_device(device);
    absl::StatusOr<int64_t> id = store_->queue().RegisterWorker(w);
    EXPECT_TRUE(id.ok()) << id.status();
    return *id;
  }
  Assignment Acquire(int64_t worker) {
    absl::StatusOr<std::optional<Assignment>> a =
        store_->queue().AcquireJob(worker, kLease);
    EXPECT_TRUE(a.ok()) << a.status();
    EXPECT_TRUE(a->has_value());
    return **a;
  }
  // All pages.
  int CountRows(const std::string& split) {
    v1::MetricsFilter f;
    f.set_split(split);
    f.set_page_size(10000);
    int n = 0;
    do {
      std::string token;
      auto rows = store_->metrics().QueryMetrics(f, &token);
      if (!rows.ok()) return -1;
      n += static_cast<int>(rows->size());
      f.set_page_token(token);
    } while (!f.page_token().empty());
    return n;
  }

  fs::path dir_;
  std::string path_;
  ManualClock clock_;
  FullDiskEnv env_;  // declared before store_: outlives it
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, CreateSweepStoresAllJobsInExpansionOrder) {
  absl::StatusOr<v1::Sweep> sweep = store_->sweeps().CreateSweep(Spec("a"));
  ASSERT_TRUE(sweep.ok()) << sweep.status();
  EXPECT_EQ(sweep->job_ids_size(), 4);
  EXPECT_EQ(sweep->counts().queued(), 4u);
  EXPECT_EQ(sweep->state(), v1::SWEEP_ACTIVE);
  auto jobs = store_->sweeps().ListJobs({.sweep_id = sweep->id()});
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), 4u);
  EXPECT_EQ((*jobs)[0].method(), "baseline");
  EXPECT_EQ((*jobs)[2].method(), "mixup");
  EXPECT_EQ((*jobs)[3].seed(), 1u);
  EXPECT_EQ((*jobs)[3].config().value(), 0.2);
  EXPECT_EQ((*jobs)[3].max_attempts(), 3u);
}

TEST_F(StoreTest, InvalidSpecStoresNothing) {
  v1::SweepSpec bad = Spec("bad");
  bad.mutable_methods(1)->set_values(0, 11);
  absl::StatusOr<v1::Sweep> r = store_->sweeps().CreateSweep(bad);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("methods[1].values[0]"),
            std::string::npos)
      << r.status();
  auto sweeps = store_->sweeps().ListSweeps(100, false);
  ASSERT_TRUE(sweeps.ok());
  EXPECT_TRUE(sweeps->empty());
  EXPECT_TRUE(store_->sweeps().ListJobs({})->empty());
  EXPECT_TRUE(store_->metrics().ListEvents(0, 0, 0, 100)->empty());
}

TEST_F(StoreTest, QuotasPerSubmitterRefuseExcessAndStoreNothing) {
  SubmitQuota bob{"bob", /*max_unfinished_jobs=*/10, /*max_active_sweeps=*/3};
  auto first = store_->sweeps().CreateSweep(Spec("a", 2), bob);  // 4 jobs
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->submitter(), "bob");
  ASSERT_TRUE(store_->sweeps().CreateSweep(Spec("b", 2), bob).ok());  // 8 jobs
  // 8 + 4 > 10: refused, naming the numbers and the flag.
  auto third = store_->sweeps().CreateSweep(Spec("c", 2), bob);
  ASSERT_TRUE(absl::IsResourceExhausted(third.status())) << third.status();
  EXPECT_FALSE(IsStorageFull(third.status()));  // a quota, not a full disk
  EXPECT_NE(third.status().message().find("bob has 8 jobs queued or running"),
            std::string::npos)
      << third.status();
  EXPECT_NE(third.status().message().find("--max_unfinished_jobs_per_submitter"),
            std::string::npos);
  EXPECT_EQ(store_->sweeps().ListSweeps(100, false)->size(), 2u);
  // Another submitter has a quota of their own.
  ASSERT_TRUE(store_->sweeps().CreateSweep(Spec("d", 2), {"alice", 10, 3}).ok());
  // A retry of a stored sweep returns it whatever the quota.
  v1::SweepSpec again = Spec("b2", 2);
  again.set_request_id("r-1");
  ASSERT_TRUE(store_->sweeps().CreateSweep(again, {"carol", 10, 3}).ok());
  EXPECT_TRUE(store_->sweeps().CreateSweep(again, {"carol", 1, 1}).ok());
  // Once bob's work ends, he may submit again; then the sweep count binds.
  ASSERT_TRUE(store_->sweeps().CancelSweep(first->id()).ok());
  ASSERT_TRUE(store_->sweeps().CreateSweep(Spec("e", 1), bob).ok());  // 2 jobs: 10
  ASSERT_TRUE(store_->sweeps().CancelSweep(store_->sweeps().ListSweeps(1, false)->at(0).id())
                  .ok());
  SubmitQuota two_sweeps{"bob", 0, 1};
  auto over = store_->sweeps().CreateSweep(Spec("f", 1), two_sweeps);
  ASSERT_TRUE(absl::IsResourceExhausted(over.status())) << over.status();
  EXPECT_NE(over.status().message().find("--max_active_sweeps_per_submitter"),
            std::string::npos)
      << over.status();
}

TEST_F(StoreTest, RequestIdNeverCreatesASecondCopy) {
  v1::SweepSpec s = Spec("idem");
  s.set_request_id("req-1");
  auto a = store_->sweeps().CreateSweep(s);
  auto b = store_->sweeps().CreateSweep(s);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->id(), b->id());
  EXPECT_EQ(store_->sweeps().ListJobs({})->size(), 4u);
  s.add_seeds(7);
  auto c = store_->sweeps().CreateSweep(s);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kFailedPrecondition)
      << c.status();
  EXPECT_EQ(store_->sweeps().ListJobs({})->size(), 4u);
}

TEST_F(StoreTest, DataSurvivesCloseAndReopen) {
  auto sweep = store_->sweeps().CreateSweep(Spec("persist"));
  int64_t w = Worker();
  Assignment a = Acquire(w);
  ASSERT_TRUE(store_->reports().ReportEpoch(a.lease, {Metrics(1, "test", 0.05)}).ok());
  ASSERT_TRUE(store_->reports().RecordCheckpoint(a.lease, 1, "job-1/1.pt").ok());
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
  EXPECT_TRUE(store_->reports().ReportEpoch(a.lease, {Metrics(2, "test", 0.04)}).ok());
}

TEST_F(StoreTest, AJobWhoseStoredConfigIsDamagedIsDataLossNamingIt) {
  auto sweep = store_->sweeps().CreateSweep(Spec("damaged"));
  ASSERT_TRUE(sweep.ok()) << sweep.status();
  const int64_t job = sweep->job_ids(1);
  store_.reset();
  {
    // Another program scribbles over one job's config.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    const std::string sql = absl::StrCat(
        "UPDATE jobs SET config = x'ffffffff0a' WHERE id = ", job);
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  store_ = OpenStore();
  absl::StatusOr<v1::Job> j = store_->sweeps().GetJob(job);
  ASSERT_EQ(j.status().code(), absl::StatusCode::kDataLoss) << j.status();
  EXPECT_NE(j.status().message().find(absl::StrCat("job ", job)),
            std::string::npos)
      << j.status();
  JobFilter f;
  f.sweep_id = sweep->id();
  EXPECT_EQ(store_->sweeps().ListJobs(f).status().code(), absl::StatusCode::kDataLoss);
  // The other jobs still read.
  EXPECT_TRUE(store_->sweeps().GetJob(sweep->job_ids(0)).ok());
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
    EXPECT_EQ(skipped.status().message().find("quick_check"),
              std::string::npos)
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

TEST_F(StoreTest, StaleAttemptReportIsRefusedAndChangesNothing) {
  store_->sweeps().CreateSweep(Spec("fence", 1)).IgnoreError();
  int64_t w1 = Worker(), w2 = Worker();
  Assignment first = Acquire(w1);
  ASSERT_TRUE(
      store_->reports().ReportEpoch(first.lease, {Metrics(1, "test", 0.10)}).ok());
  clock_.AdvanceMicros(kLease + 1);
  auto expired = store_->queue().ExpireLeases();
  ASSERT_EQ(expired->requeued.size(), 1u);
  // The requeued job is handed out again; attempt 2 resumes.
  Assignment second = Acquire(w2);
  ASSERT_EQ(second.lease.job_id(), first.lease.job_id());
  EXPECT_EQ(second.lease.attempt(), 2u);
  // The first worker wakes up and reports epoch 1 again with other numbers.
  absl::Status s = store_->reports().ReportEpoch(first.lease, {Metrics(1, "test", 0.99)});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_EQ(store_->reports().RecordCheckpoint(first.lease, 1, "x").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->reports().FinishJob(first.lease, v1::SUCCEEDED, "").status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto rel = store_->metrics().GetReliability(first.lease.job_id(), 1, "test");
  ASSERT_TRUE(rel.ok());
  std::string token;
  v1::MetricsFilter f;
  auto rows = store_->metrics().QueryMetrics(f, &token);
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_DOUBLE_EQ((*rows)[0].ece(), 0.10);
  EXPECT_EQ(store_->sweeps().GetJob(first.lease.job_id())->state(), v1::RUNNING);
}

TEST_F(StoreTest, QueuedAgainJobRefusesTheOldLeaseEvenWithSameAttempt) {
  store_->sweeps().CreateSweep(Spec("requeue", 1)).IgnoreError();
  int64_t w = Worker();
  Assignment a = Acquire(w);
  clock_.AdvanceMicros(kLease + 1);
  ASSERT_EQ(store_->queue().ExpireLeases()->requeued.size(), 1u);
  // Not yet leased again: state QUEUED, attempt still 1.
  EXPECT_EQ(store_->reports().ReportEpoch(a.lease, {Metrics(1, "test", 0.1)}).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(StoreTest, ReReportingAnEpochLeavesOneRow) {
  store_->sweeps().CreateSweep(Spec("dup", 1)).IgnoreError();
  Assignment a = Acquire(Worker());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(store_->reports()
                    .ReportEpoch(a.lease, {Metrics(1, "test", 0.1 + 0.1 * i),
                                            Metrics(1, "test_ts", 0.05)})
                    .ok());
  }
  EXPECT_EQ(CountRows("test"), 1);
  EXPECT_EQ(CountRows("test_ts"), 1);
  v1::MetricsFilter f;
  f.set_include_bins(true);
  f.set_split("test");
  std::string token;
  auto rows = store_->metrics().QueryMetrics(f, &token);
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_DOUBLE_EQ((*rows)[0].ece(), 0.1 + 0.1 * 2);  // the last report wins
  EXPECT_EQ((*rows)[0].bins_size(), 15);    // not 45
}

// (epoch, attempt) of the job's rows of `split`, read with SQL.
std::vector<std::pair<int, int>> RowAttempts(const std::string& path,
                                             const std::string& split) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db,
                     "SELECT epoch, attempt FROM epoch_metrics WHERE split = ? "
                     "ORDER BY epoch",
                     -1, &st, nullptr);
  sqlite3_bind_text(st, 1, split.c_str(), -1, SQLITE_TRANSIENT);
  std::vector<std::pair<int, int>> out;
  while (sqlite3_step(st) == SQLITE_ROW)
    out.push_back({sqlite3_column_int(st, 0), sqlite3_column_int(st, 1)});
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

TEST_F(StoreTest, ALeavingWorkerIsShownWithItsReasonUntilItIsBack) {
  const int64_t w = Worker();
  ASSERT_TRUE(store_->queue().LeaveRotation(w, true, "checkpoint_dir /x: read-only")
                  .ok());
  v1::WorkerInfo info = store_->queue().ListWorkers()->at(0);
  EXPECT_EQ(info.state(), v1::WORKER_OUT_OF_ROTATION);
  EXPECT_EQ(info.state_reason(), "checkpoint_dir /x: read-only");
  ASSERT_TRUE(store_->queue().LeaveRotation(w, false, "stopped by a signal").ok());
  EXPECT_EQ(store_->queue().ListWorkers()->at(0).state(), v1::WORKER_STOPPED);
  // Unknown workers and bad reasons change nothing.
  EXPECT_TRUE(absl::IsNotFound(store_->queue().LeaveRotation(w + 1, true, "x")));
  absl::Status bad = store_->queue().LeaveRotation(w, true, "cut \xE2\x82");
  EXPECT_TRUE(absl::IsInvalidArgument(bad)) << bad;
  EXPECT_NE(bad.message().find("reason"), std::string::npos) << bad;
  EXPECT_EQ(store_->queue().ListWorkers()->at(0).state_reason(),
            "stopped by a signal");
  // Back: a heartbeat makes it active again, reason cleared.
  ASSERT_TRUE(store_->queue().Heartbeat(w, {}, kLease).ok());
  info = store_->queue().ListWorkers()->at(0);
  EXPECT_EQ(info.state(), v1::WORKER_ACTIVE);
  EXPECT_EQ(info.state_reason(), "");
}

TEST_F(StoreTest, ARowRecordsTheAttemptThatWroteIt) {
  v1::SweepSpec s = Spec("provenance", 1);
  s.clear_methods();
  s.add_methods()->set_name("baseline");
  ASSERT_TRUE(store_->sweeps().CreateSweep(s).ok());
  int64_t w = Worker();
  Assignment a1 = Acquire(w);
  ASSERT_TRUE(store_->reports().ReportEpoch(a1.lease, {Metrics(1, "test", 0.1)}).ok());
  ASSERT_TRUE(store_->reports().ReportEpoch(a1.lease, {Metrics(2, "test", 0.1)}).ok());
  using Rows = std::vector<std::pair<int, int>>;
  EXPECT_EQ(RowAttempts(path_, "test"), (Rows{{1, 1}, {2, 1}}));
  clock_.AdvanceMicros(kLease + 1);
  ASSERT_EQ(store_->queue().ExpireLeases()->requeued.size(), 1u);
  Assignment a2 = Acquire(w);
  ASSERT_EQ(a2.lease.attempt(), 2u);
  // Attempt 2 resumed from epoch 1: it rewrites epoch 2 and adds epoch 3.
  ASSERT_TRUE(store_->reports().ReportEpoch(a2.lease, {Metrics(2, "test", 0.2)}).ok());
  ASSERT_TRUE(store_->reports().ReportEpoch(a2.lease, {Metrics(3, "test", 0.2)}).ok());
  EXPECT_EQ(RowAttempts(path_, "test"), (Rows{{1, 1}, {2, 2}, {3, 2}}));
  // The old attempt's late report is refused and writes nothing.
  EXPECT_FALSE(store_->reports().ReportEpoch(a1.lease, {Metrics(3, "test", 0.9)}).ok());
  EXPECT_EQ(RowAttempts(path_, "test"), (Rows{{1, 1}, {2, 2}, {3, 2}}));
}

TEST_F(StoreTest, ExpiredLeaseRequeuesWithNextAttemptAndFailsAfterMax) {
  v1::SweepSpec s = Spec("expire", 1);
  s.set_max_attempts(2);
  s.clear_methods();
  s.add_methods()->set_name("baseline");
  auto sweep = store_->sweeps().CreateSweep(s);
  int64_t w = Worker();
  Assignment a1 = Acquire(w);
  EXPECT_EQ(a1.lease.attempt(), 1u);
  // Heartbeats keep it alive.
  clock_.AdvanceMicros(kLease / 2);
  ASSERT_EQ(store_->queue().Heartbeat(w, {a1.lease}, kLease)->extended.size(), 1u);
  clock_.AdvanceMicros(kLease / 2 + 10);
  EXPECT_TRUE(store_->queue().ExpireLeases()->requeued.empty());
  // Then silence.
  clock_.AdvanceMicros(kLease + 1);
  auto r = store_->queue().ExpireLeases();
  ASSERT_EQ(r->requeued.size(), 1u);
  EXPECT_EQ(store_->sweeps().GetJob(a1.lease.job_id())->state(), v1::QUEUED);
  EXPECT_EQ(store_->queue().ListWorkers()->at(0).state(), v1::WORKER_LOST);
  Assignment a2 = Acquire(w);
  EXPECT_EQ(a2.lease.attempt(), 2u);
  clock_.AdvanceMicros(kLease + 1);
  r = store_->queue().ExpireLeases();
  ASSERT_EQ(r->failed.size(), 1u);
  auto job = store_->sweeps().GetJob(a1.lease.job_id());
  EXPECT_EQ(job->state(), v1::FAILED);
  EXPECT_NE(job->error().find("attempt 2 of 2"), std::string::npos)
      << job->error();
  EXPECT_EQ(store_->sweeps().GetSweep(sweep->id())->state(), v1::SWEEP_FAILED);
  // A failed job can be retried, with fresh attempts; the attempt number
  // keeps counting.
  auto retried = store_->sweeps().RetryJob(job->id());
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->state(), v1::QUEUED);
  EXPECT_EQ(retried->max_attempts(), 4u);
  EXPECT_EQ(store_->sweeps().GetSweep(sweep->id())->state(), v1::SWEEP_ACTIVE);
  EXPECT_EQ(Acquire(w).lease.attempt(), 3u);
}

TEST_F(StoreTest, AfterARestartRunningLeasesGetAGracePeriod) {
  store_->sweeps().CreateSweep(Spec("grace", 1)).IgnoreError();
  Assignment a = Acquire(Worker());
  // The coordinator was down for a minute: the lease ran out meanwhile.
  clock_.AdvanceSeconds(60);
  auto n = store_->queue().ExtendRunningLeases(clock_.NowMicros() + kLease);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 1);
  auto r = store_->queue().ExpireLeases();
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->requeued.empty());
  // The worker reconnects and heartbeats: it keeps its lease.
  auto hb = store_->queue().Heartbeat(a.job.worker_id(), {a.lease}, kLease);
  ASSERT_TRUE(hb.ok()) << hb.status();
  EXPECT_EQ(hb->extended.size(), 1u);
  // One that never comes back loses it a lease later, as usual.
  clock_.AdvanceSeconds(31);
  r = store_->queue().ExpireLeases();
  EXPECT_EQ(r->requeued.size(), 1u);
}

TEST_F(StoreTest, FairTurnsBetweenSweepsOfEqualPriority) {
  auto big = store_->sweeps().CreateSweep(Spec("big", 50));     // 100 jobs
  auto small = store_->sweeps().CreateSweep(Spec("small", 2));  // 4 jobs
  int64_t w = Worker();
  std::vector<int64_t> order;
  for (int i = 0; i < 8; ++i) order.push_back(Acquire(w).job.sweep_id());
  // Alternates: the big sweep does not starve the small one.
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(order[i], i % 2 == 0 ? big->id() : small->id()) << i;
  }
  // Then only the big one is left.
  EXPECT_EQ(Acquire(w).job.sweep_id(), big->id());
  EXPECT_EQ(Acquire(w).job.sweep_id(), big->id());
}

TEST_F(StoreTest, PriorityThenAgeWithinASweep) {
  auto low = store_->sweeps().CreateSweep(Spec("low", 1));
  v1::SweepSpec hi = Spec("high", 1);
  hi.set_priority(5);
  auto high = store_->sweeps().CreateSweep(hi);
  int64_t w = Worker();
  Assignment a = Acquire(w);
  EXPECT_EQ(a.job.sweep_id(), high->id());
  EXPECT_EQ(a.job.id(), high->job_ids(0));  // oldest first
  EXPECT_EQ(Acquire(w).job.id(), high->job_ids(1));
  EXPECT_EQ(Acquire(w).job.sweep_id(), low->id());
}

TEST_F(StoreTest, DeviceClassMatches) {
  v1::SweepSpec gpu = Spec("gpu", 1);
  gpu.set_device("cuda");
  store_->sweeps().CreateSweep(gpu).IgnoreError();
  int64_t cpu_worker = Worker("cpu"), gpu_worker = Worker("cuda:0");
  auto none = store_->queue().AcquireJob(cpu_worker, kLease);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  EXPECT_EQ(Acquire(gpu_worker).job.device(), "cuda");
  v1::SweepSpec any = Spec("any", 1);
  store_->sweeps().CreateSweep(any).IgnoreError();
  EXPECT_EQ(Acquire(cpu_worker).job.device(), "any");
  EXPECT_EQ(store_->queue().AcquireJob(99, kLease).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(StoreTest, CancellationReachesTheWorkerThroughHeartbeat) {
  auto sweep = store_->sweeps().CreateSweep(Spec("cancel", 1));
  int64_t w = Worker();
  Assignment a = Acquire(w);
  auto c = store_->sweeps().CancelJob(a.lease.job_id());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->state(), v1::CANCELLED);
  auto hb = store_->queue().Heartbeat(w, {a.lease}, kLease);
  ASSERT_EQ(hb->cancelled.size(), 1u);
  EXPECT_TRUE(hb->extended.empty());
  // The worker's epoch report is refused; its FinishJob is accepted and the
  // job stays CANCELLED.
  EXPECT_EQ(store_->reports().ReportEpoch(a.lease, {Metrics(1, "test", 0.1)}).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(*store_->reports().FinishJob(a.lease, v1::FAILED, "stopped"), v1::CANCELLED);
  EXPECT_EQ(store_->sweeps().CancelJob(a.lease.job_id()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // Cancelling the sweep ends the rest.
  auto s = store_->sweeps().CancelSweep(sweep->id());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->state(), v1::SWEEP_CANCELLED);
  EXPECT_EQ(s->counts().cancelled(), 2u);
  EXPECT_FALSE(store_->queue().AcquireJob(w, kLease)->has_value());
}

TEST_F(StoreTest, FinishIsIdempotentAndEndsTheSweep) {
  v1::SweepSpec s = Spec("finish", 1);
  s.clear_methods();
  s.add_methods()->set_name("baseline");
  auto sweep = store_->sweeps().CreateSweep(s);
  int64_t w = Worker();
  Assignment a = Acquire(w);
  EXPECT_EQ(*store_->reports().FinishJob(a.lease, v1::SUCCEEDED, ""), v1::SUCCEEDED);
  EXPECT_EQ(*store_->reports().FinishJob(a.lease, v1::SUCCEEDED, ""), v1::SUCCEEDED);
  EXPECT_EQ(store_->sweeps().GetSweep(sweep->id())->state(), v1::SWEEP_SUCCEEDED);
  auto hb = store_->queue().Heartbeat(w, {a.lease}, kLease);
  EXPECT_EQ(hb->lost.size(), 1u);
  EXPECT_EQ(
      store_->reports().FinishJob(a.lease, v1::JOB_STATE_UNSPECIFIED, "").status().code(),
      absl::StatusCode::kInvalidArgument);
}

TEST_F(StoreTest, QueryMetricsFiltersAndPages) {
  auto sweep =
      store_->sweeps().CreateSweep(Spec("query", 2));  // baseline s0 s1, mixup s0 s1
  int64_t w = Worker();
  for (int j = 0; j < 4; ++j) {
    Assignment a = Acquire(w);
    for (uint32_t e = 1; e <= 3; ++e) {
      ASSERT_TRUE(store_->reports()
                      .ReportEpoch(a.lease, {Metrics(e, "test", 0.01 * e + 0.1 * j),
                                              Metrics(e, "test_ts", 0.001)})
                      .ok());
    }
  }
  v1::MetricsFilter f;
  f.set_sweep_id(sweep->id());
  std::string token;
  EXPECT_EQ(store_->metrics().QueryMetrics(f, &token)->size(), 24u);
  f.set_method("mixup");
  f.set_split("test");
  f.set_epoch_min(2);
  auto rows = store_->metrics().QueryMetrics(f, &token);
  ASSERT_EQ(rows->size(), 4u);  // 2 jobs x epochs 2..3
  EXPECT_EQ((*rows)[0].method(), "mixup");
  EXPECT_EQ((*rows)[0].epoch(), 2u);
  EXPECT_DOUBLE_EQ((*rows)[0].value(), 0.2);
  f.clear_method();
  f.add_seeds(1);
  EXPECT_EQ(store_->metrics().QueryMetrics(f, &token)->size(),
            4u);  // seed 1 of both methods
  // Pages of 5 cover all 24 rows exactly once.
  v1::MetricsFilter all;
  all.set_sweep_id(sweep->id());
  all.set_page_size(5);
  int total = 0, pages = 0;
  std::set<std::tuple<int64_t, uint32_t, std::string>> seen;
  do {
    rows = store_->metrics().QueryMetrics(all, &token);
    ASSERT_TRUE(rows.ok()) << rows.status();
    for (const auto& r : *rows) seen.insert({r.job_id(), r.epoch(), r.split()});
    total += rows->size();
    ++pages;
    all.set_page_token(token);
  } while (!token.empty());
  EXPECT_EQ(total, 24);
  EXPECT_EQ(seen.size(), 24u);
  EXPECT_EQ(pages, 5);
  all.set_page_token("garbage");
  EXPECT_EQ(store_->metrics().QueryMetrics(all, &token).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(StoreTest, LatestOnlyReadsEachJobsNewestEpochAndCountsSumEpochs) {
  auto sweep = store_->sweeps().CreateSweep(Spec("latest", 2));  // 4 jobs
  ASSERT_TRUE(sweep.ok());
  int64_t w = Worker();
  // Job j stores epochs 1..j+1.
  for (int j = 0; j < 4; ++j) {
    Assignment a = Acquire(w);
    for (uint32_t e = 1; e <= static_cast<uint32_t>(j + 1); ++e)
      ASSERT_TRUE(store_->reports().ReportEpoch(a.lease, {Metrics(e, "test", 0.1 * e)}).ok());
  }
  v1::MetricsFilter f;
  f.set_sweep_id(sweep->id());
  f.set_latest_only(true);
  std::string token;
  auto rows = store_->metrics().QueryMetrics(f, &token);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 4u);
  for (size_t j = 0; j < 4; ++j) {
    EXPECT_EQ((*rows)[j].epoch(), j + 1);
    EXPECT_NEAR((*rows)[j].ece(), 0.1 * (j + 1), 1e-12);
  }
  auto s = store_->sweeps().GetSweep(sweep->id());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->counts().epochs_done(), 1u + 2 + 3 + 4);
}

// Kept predictions for a report: `rows` examples of 3 classes; row i puts
// `confident` on class (i + shift) % 3 and the rest evenly; labels i % 3.
v1::Predictions MakePredictions(uint32_t epoch, int rows, float confident,
                                int shift) {
  std::vector<float> p;
  std::vector<int32_t> y;
  for (int i = 0; i < rows; ++i) {
    for (int k = 0; k < 3; ++k)
      p.push_back(k == (i + shift) % 3 ? confident : (1 - confident) / 2);
    y.push_back(i % 3);
  }
  v1::Predictions out;
  out.set_epoch(epoch);
  out.set_split("test");
  out.set_count(static_cast<uint32_t>(rows));
  out.set_classes(3);
  out.set_probabilities(calib::EncodeProbabilities(p));
  out.set_labels(calib::EncodeLabels(y));
  return out;
}

TEST_F(StoreTest, MetricsBeyondEceAndTheirEstimatorsRoundTrip) {
  store_->sweeps().CreateSweep(Spec("more", 1)).IgnoreError();
  Assignment a = Acquire(Worker());
  v1::EpochMetrics m = Metrics(1, "test", 0.1);
  m.set_classwise_ece(0.03);
  m.set_l2_ce_debiased(0.04);
  m.set_brier_reliability(0.01);
  m.set_brier_resolution(0.02);
  m.set_brier_uncertainty(0.09);
  m.set_aurc(0.05);
  m.set_estimators("bins=15 equal-width");
  v1::EpochMetrics noise = Metrics(1, "noise", 0);
  noise.clear_bins();
  noise.set_fpr95(0.5);
  noise.set_aupr(0.8);
  ASSERT_TRUE(store_->reports().ReportEpoch(a.lease, {m, noise}).ok());
  v1::MetricsFilter f;
  f.add_job_ids(a.lease.job_id());
  std::string token;
  auto rows = store_->metrics().QueryMetrics(f, &token);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u);
  const v1::EpochMetrics& n = (*rows)[0];  // "noise" < "test"
  const v1::EpochMetrics& t = (*rows)[1];
  EXPECT_DOUBLE_EQ(t.classwise_ece(), 0.03);
  EXPECT_DOUBLE_EQ(t.l2_ce_debiased(), 0.04);
  EXPECT_DOUBLE_EQ(t.brier_uncertainty(), 0.09);
  EXPECT_DOUBLE_EQ(t.aurc(), 0.05);
  EXPECT_EQ(t.estimators(), "bins=15 equal-width");
  EXPECT_FALSE(t.has_fpr95());
  EXPECT_DOUBLE_EQ(n.fpr95(), 0.5);
  EXPECT_DOUBLE_EQ(n.aupr(), 0.8);
  EXPECT_FALSE(n.has_classwise_ece());
  // Out of range: refused, naming the field.
  m.set_epoch(2);
  m.set_aurc(1.5);
  absl::Status st = store_->reports().ReportEpoch(a.lease, {m});
  EXPECT_NE(st.message().find("metrics[0].aurc"), std::string::npos) << st;
}

TEST_F(StoreTest, PredictionsComeBackBitForBitAndBadOnesAreRefused) {
  store_->sweeps().CreateSweep(Spec("pred", 1)).IgnoreError();
  Assignment a = Acquire(Worker());
  v1::ReportEpochRequest r;
  *r.mutable_lease() = a.lease;
  *r.add_metrics() = Metrics(3, "test", 0.1);
  *r.add_predictions() = MakePredictions(3, 7, 0.8f, 0);
  ASSERT_TRUE(store_->reports().ReportEpoch(r).ok());
  auto got = store_->metrics().GetPredictions(a.lease.job_id(), 0, "");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->epoch(), 3u);
  EXPECT_EQ(got->count(), 7u);
  EXPECT_EQ(got->classes(), 3u);
  EXPECT_EQ(got->probabilities(), r.predictions(0).probabilities());
  EXPECT_EQ(got->labels(), r.predictions(0).labels());
  auto none = store_->metrics().GetPredictions(a.lease.job_id(), 2, "test");
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(none.status().message().find("epochs kept: 3"), std::string::npos)
      << none.status();
  // Sizes that do not match, labels outside the classes, another epoch:
  // refused whole, nothing stored.
  v1::ReportEpochRequest bad = r;
  bad.mutable_metrics(0)->set_epoch(4);
  *bad.mutable_predictions(0) = MakePredictions(4, 7, 0.8f, 0);
  bad.mutable_predictions(0)->mutable_probabilities()->pop_back();
  auto st = store_->reports().ReportEpoch(bad);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("predictions[0].probabilities"), std::string::npos) << st;
  *bad.mutable_predictions(0) = MakePredictions(4, 7, 0.8f, 0);
  bad.mutable_predictions(0)->set_classes(2);
  bad.mutable_predictions(0)->set_probabilities(std::string(28, '\0'));
  EXPECT_NE(store_->reports().ReportEpoch(bad).message().find("outside [0, 2)"),
            std::string::npos);
  *bad.mutable_predictions(0) = MakePredictions(5, 7, 0.8f, 0);
  EXPECT_NE(store_->reports().ReportEpoch(bad).message().find("must be the metrics' epoch 4"),
            std::string::npos);
  EXPECT_EQ(store_->metrics().GetPredictions(a.lease.job_id(), 4, "test").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(BlobHashTest, AnySplitOfTheBytesHashesAlikeAndAnyChangeDiffers) {
  std::string bytes;
  for (int i = 0; i < 101; ++i) bytes.push_back(static_cast<char>(i * 37));
  const uint64_t whole = BlobHash(bytes);
  for (size_t cut = 0; cut <= bytes.size(); ++cut) {
    EXPECT_EQ(BlobHash(absl::string_view(bytes).substr(0, cut),
                       absl::string_view(bytes).substr(cut)),
              whole)
        << cut;
  }
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string changed = bytes;
    changed[i] ^= 1;
    EXPECT_NE(BlobHash(changed), whole) << i;
  }
  EXPECT_NE(BlobHash(bytes + std::string(1, '\0')), whole);  // zeros appended
}

TEST(BlobFileTest, NoSpaceLeftIsStorageFullNamingTheFile) {
  // /dev/full refuses every write with ENOSPC, as a full disk does.
  auto f = BlobFile::Open(DefaultEnv(), "/dev/full");
  ASSERT_TRUE(f.ok()) << f.status();
  auto ref = (*f)->Append(std::string(1000, 'p'), std::string(40, 'l'));
  EXPECT_EQ(ref.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(IsStorageFull(ref.status())) << ref.status();
  EXPECT_NE(ref.status().message().find("/dev/full"), std::string::npos);
}

TEST_F(StoreTest, KeptPredictionsLiveInTheirOwnFileWrittenOnce) {
  store_->sweeps().CreateSweep(Spec("pred", 2)).IgnoreError();
  const int64_t w = Worker();
  std::vector<v1::ReportEpochRequest> sent;
  for (int j = 0; j < 2; ++j) {
    Assignment a = Acquire(w);
    v1::ReportEpochRequest r;
    *r.mutable_lease() = a.lease;
    *r.add_metrics() = Metrics(1, "test", 0.1);
    *r.add_predictions() = MakePredictions(1, 500, 0.7f, j);
    ASSERT_TRUE(store_->reports().ReportEpoch(r).ok());
    sent.push_back(r);
  }
  // The bytes went to "<db>.predictions" (owner-only), not into the rows.
  const std::string blobs = path_ + ".predictions";
  ASSERT_TRUE(fs::exists(blobs));
  const size_t one = sent[0].predictions(0).probabilities().size() +
                     sent[0].predictions(0).labels().size();
  EXPECT_EQ(fs::file_size(blobs), 2 * one);
  EXPECT_EQ(fs::status(blobs).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* q = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT SUM(length(probabilities) + "
                                     "length(labels)), COUNT(file_offset) FROM "
                                     "predictions", -1, &q, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
    EXPECT_EQ(sqlite3_column_int64(q, 0), 0);
    EXPECT_EQ(sqlite3_column_int64(q, 1), 2);
    sqlite3_finalize(q);
    sqlite3_close(db);
  }
  // Bit for bit, also after reopening.
  store_.reset();
  store_ = OpenStore();
  for (int j = 0; j < 2; ++j) {
    auto got = store_->metrics().GetPredictions(sent[j].lease().job_id(), 0, "");
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->probabilities(), sent[j].predictions(0).probabilities());
    EXPECT_EQ(got->labels(), sent[j].predictions(0).labels());
  }
  // A damaged byte, and a file cut short (a machine crash that lost the
  // tail): DataLoss naming the job, never wrong numbers.
  const int64_t second = sent[1].lease().job_id();
  {
    std::fstream f(blobs, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(one + 10));
    f.put('\x7f');
  }
  auto damaged = store_->metrics().GetPredictions(second, 0, "");
  EXPECT_EQ(damaged.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(damaged.status().message().find(absl::StrCat("job ", second)),
            std::string::npos) << damaged.status();
  EXPECT_TRUE(store_->metrics().GetPredictions(sent[0].lease().job_id(), 0, "").ok());
  fs::resize_file(blobs, one + 100);
  auto cut = store_->metrics().GetPredictions(second, 0, "");
  EXPECT_EQ(cut.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(cut.status().message().find("ends before"), std::string::npos)
      << cut.status();
  // Rows from before the file (schema < 17) keep their bytes in the row.
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* u = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "UPDATE predictions SET probabilities = "
                                     "?1, labels = ?2, file_offset = NULL, "
                                     "file_bytes = NULL, file_hash = NULL "
                                     "WHERE job_id = ?3", -1, &u, nullptr),
              SQLITE_OK);
    const std::string& pr = sent[1].predictions(0).probabilities();
    const std::string& lb = sent[1].predictions(0).labels();
    sqlite3_bind_blob(u, 1, pr.data(), static_cast<int>(pr.size()), SQLITE_STATIC);
    sqlite3_bind_blob(u, 2, lb.data(), static_cast<int>(lb.size()), SQLITE_STATIC);
    sqlite3_bind_int64(u, 3, second);
    ASSERT_EQ(sqlite3_step(u), SQLITE_DONE);
    sqlite3_finalize(u);
    sqlite3_close(db);
  }
  auto old = store_->metrics().GetPredictions(second, 0, "");
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->probabilities(), sent[1].predictions(0).probabilities());
}

TEST_F(StoreTest, SeedEnsembleAveragesTheKeptProbabilities) {
  auto sweep = store_->sweeps().CreateSweep(Spec("ens", 3));  // baseline x3, mixup x3
  ASSERT_TRUE(sweep.ok());
  int64_t w = Worker();
  // Baseline: three identical seeds. Mixup: seeds that put 0.9 on classes
  // shifted by 0, 1, 2: their average is uniform except... see below.
  for (int j = 0; j < 6; ++j) {
    Assignment a = Acquire(w);
    v1::ReportEpochRequest r;
    *r.mutable_lease() = a.lease;
    *r.add_metrics() = Metrics(1, "test", 0.1);
    *r.add_predictions() =
        j < 3 ? MakePredictions(1, 30, 0.8f, 0) : MakePredictions(1, 30, 0.6f, j - 3);
    ASSERT_TRUE(store_->reports().ReportEpoch(r).ok());
  }
  v1::SummaryPoint final_point;
  final_point.set_final(true);
  auto rows = store_->metrics().SummarizeSweep(sweep->id(), final_point, "", "", true);
  ASSERT_TRUE(rows.ok()) << rows.status();
  std::vector<v1::SummaryRow> ens;
  for (const auto& r : *rows)
    if (r.ensemble()) ens.push_back(r);
  ASSERT_EQ(ens.size(), 2u);
  auto stat = [](const v1::SummaryRow& r, const std::string& m) {
    for (const auto& s : r.stats())
      if (s.metric() == m) return s.mean();
    return -1.0;
  };
  // Identical seeds: the ensemble is each seed (0.8 on the label, always
  // right: accuracy 1, NLL -ln 0.8 in float16, ECE 1 - 0.8).
  const calib::ProbabilityMetrics one = calib::MetricsOfProbabilities(
      *calib::DecodeProbabilities(MakePredictions(1, 30, 0.8f, 0).probabilities(), 30, 3),
      *calib::DecodeLabels(MakePredictions(1, 30, 0.8f, 0).labels(), 30, 3), 3, 15);
  EXPECT_EQ(ens[0].method(), "baseline");
  EXPECT_EQ(ens[0].seeds(), 3u);
  EXPECT_DOUBLE_EQ(stat(ens[0], "accuracy"), one.accuracy);
  EXPECT_DOUBLE_EQ(stat(ens[0], "nll"), one.nll);
  EXPECT_DOUBLE_EQ(stat(ens[0], "ece"), one.ece);
  EXPECT_DOUBLE_EQ(stat(ens[0], "brier"), one.brier);
  EXPECT_NEAR(stat(ens[0], "ece"), 0.2, 1e-3);
  // Mixup: each class gets 0.6 from one seed and 0.2 from two: the average
  // is 1/3 everywhere (float16 0.6 and 0.2 average to 0.33341...), so the
  // ensemble is as unsure as can be: confidence 1/3, NLL ln 3.
  EXPECT_EQ(ens[1].method(), "mixup");
  EXPECT_NEAR(stat(ens[1], "mean_confidence"), 1.0 / 3, 1e-3);
  EXPECT_NEAR(stat(ens[1], "nll"), std::log(3.0), 1e-3);
  EXPECT_NEAR(stat(ens[1], "mean_entropy"), std::log(3.0), 1e-3);
}

TEST_F(StoreTest, SummaryIsMeanStdCountOverSeeds) {
  auto sweep =
      store_->sweeps().CreateSweep(Spec("summary", 3));  // baseline x3, mixup x3
  int64_t w = Worker();
  // ECE per (job, epoch): job j epoch e -> 0.1 * (j+1) / e.
  for (int j = 0; j < 6; ++j) {
    Assignment a = Acquire(w);
    for (uint32_t e = 1; e <= 3; ++e) {
      v1::EpochMetrics m = Metrics(e, "test", 0.1 * (j + 1) / e);
      m.set_accuracy(0.5 + 0.1 * e);
      ASSERT_TRUE(store_->reports().ReportEpoch(a.lease, {m}).ok());
    }
  }
  // Jobs 0-2 are baseline seeds 0-2 (fair turns inside one sweep = age order).
  v1::SummaryPoint final_point;
  final_point.set_final(true);
  auto rows = store_->metrics().SummarizeSweep(sweep->id(), final_point, "test");
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u);
  const v1::SummaryRow& base = (*rows)[0];
  EXPECT_EQ(base.method(), "baseline");
  EXPECT_EQ(base.seeds(), 3u);
  const v1::MetricStat* ece = nullptr;
  for (const auto& s : base.stats())
    if (s.metric() == "ece") ece = &s;
  ASSERT_NE(ece, nullptr);
  // Final epoch 3: values 0.1/3, 0.2/3, 0.3/3 -> mean 0.2/3, sample std 0.1/3.
  EXPECT_NEAR(ece->mean(), 0.2 / 3, 1e-12);
  EXPECT_NEAR(ece->std(), 0.1 / 3, 1e-12);
  EXPECT_EQ(ece->count(), 3u);

  v1::SummaryPoint epoch1;
  epoch1.set_epoch(1);
  rows = store_->metrics().SummarizeSweep(sweep->id(), epoch1, "test");
  for (const auto& s : (*rows)[1].stats())
    if (s.metric() == "ece")
      EXPECT_NEAR(s.mean(), 0.5, 1e-12);  // (0.4+0.5+0.6)/3

  // Best by accuracy (higher is better) picks epoch 3; by ece (lower) epoch 3.
  v1::SummaryPoint best;
  best.set_best_by("accuracy");
  rows = store_->metrics().SummarizeSweep(sweep->id(), best, "test");
  ASSERT_TRUE(rows.ok()) << rows.status();
  for (uint32_t e : (*rows)[0].epochs()) EXPECT_EQ(e, 3u);
  best.set_best_by("ece; DROP TABLE jobs");
  EXPECT_EQ(store_->metrics().SummarizeSweep(sweep->id(), best, "test").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->metrics().SummarizeSweep(999, final_point, "").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(StoreTest, SummaryComparesWithAReferencePairedBySeed) {
  auto sweep = store_->sweeps().CreateSweep(Spec("vs", 3));  // baseline x3, mixup x3
  ASSERT_TRUE(sweep.ok());
  int64_t w = Worker();
  // Jobs in order: baseline seeds 0-2, then mixup 0.2 seeds 0-2. Final ECE:
  // baseline 0.10, 0.13, 0.09; mixup 0.05, 0.07, 0.06. Mixup's seed 1 stores
  // test_ts only in the second sweep below.
  const double ece[6] = {0.10, 0.13, 0.09, 0.05, 0.07, 0.06};
  for (int j = 0; j < 6; ++j) {
    Assignment a = Acquire(w);
    ASSERT_TRUE(store_->reports().ReportEpoch(a.lease, {Metrics(1, "test", ece[j])}).ok());
  }
  v1::SummaryPoint final_point;
  final_point.set_final(true);
  auto rows = store_->metrics().SummarizeSweep(sweep->id(), final_point, "test", "baseline");
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u);
  auto stat = [](const v1::SummaryRow& r, const std::string& name) {
    for (const auto& m : r.stats())
      if (m.metric() == name) return m;
    return v1::MetricStat();
  };
  EXPECT_EQ((*rows)[0].vs_method(), "baseline");
  EXPECT_FALSE(stat((*rows)[0], "ece").has_vs());  // the reference itself
  const v1::MetricStat m = stat((*rows)[1], "ece");
  ASSERT_TRUE(m.has_vs());
  // By hand: d = -0.05, -0.06, -0.03; mean -0.0466667, sd 0.0152753,
  // t(0.975, 2) = 4.302653: half width 0.0379458.
  EXPECT_EQ(m.vs().pairs(), 3u);
  EXPECT_NEAR(m.vs().mean(), -0.0466667, 1e-6);
  EXPECT_NEAR(m.vs().low(), -0.0846125, 1e-6);
  EXPECT_NEAR(m.vs().high(), -0.0087209, 1e-6);
  EXPECT_TRUE(m.vs().significant());
  // Equal accuracy on every seed: a difference of exactly 0, not significant.
  EXPECT_NEAR(stat((*rows)[1], "accuracy").vs().mean(), 0, 1e-12);
  EXPECT_FALSE(stat((*rows)[1], "accuracy").vs().significant());

  // Against mixup (one value, so the bare name resolves): the signs flip.
  rows = store_->metrics().SummarizeSweep(sweep->id(), final_point, "test", "mixup");
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ((*rows)[0].vs_method(), "mixup");
  EXPECT_DOUBLE_EQ((*rows)[0].vs_value(), 0.2);
  EXPECT_NEAR(stat((*rows)[0], "ece").vs().mean(), 0.0466667, 1e-6);

  // Unknown or absent references name what the sweep has.
  for (const char* bad : {"erl", "mixup:0.3", "mixup:x", "nonsense"}) {
    auto r = store_->metrics().SummarizeSweep(sweep->id(), final_point, "test", bad);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(r.status().message().find("vs \""), std::string::npos) << bad;
  }
  auto r = store_->metrics().SummarizeSweep(sweep->id(), final_point, "test", "erl");
  EXPECT_NE(r.status().message().find("baseline, mixup:0.2"), std::string::npos)
      << r.status();
}

TEST_F(StoreTest, SummaryPairsBySeedNotByPosition) {
  auto sweep = store_->sweeps().CreateSweep(Spec("pairs", 3));
  ASSERT_TRUE(sweep.ok());
  int64_t w = Worker();
  const double ece[6] = {0.10, 0.13, 0.09, 0.05, 0.07, 0.06};
  for (int j = 0; j < 6; ++j) {
    Assignment a = Acquire(w);
    // Mixup's seed 1 (job 4) stores no test split.
    const std::string split = j == 4 ? "test_ts" : "test";
    ASSERT_TRUE(store_->reports().ReportEpoch(a.lease, {Metrics(1, split, ece[j])}).ok());
  }
  v1::SummaryPoint final_point;
  final_point.set_final(true);
  auto rows = store_->metrics().SummarizeSweep(sweep->id(), final_point, "test", "baseline");
  ASSERT_TRUE(rows.ok()) << rows.status();
  const v1::SummaryRow& mixup = (*rows)[1];
  ASSERT_EQ(mixup.method(), "mixup");
  v1::MetricStat m;
  for (const auto& st : mixup.stats())
    if (st.metric() == "ece") m = st;
  // Seeds 0 and 2 pair: d = 0.05 - 0.10, 0.06 - 0.09 = -0.05, -0.03 (by
  // position it would be -0.05, -0.07). Mean -0.04, sd 0.0141421,
  // t(0.975, 1) = 12.706205: half width 0.1270620.
  EXPECT_EQ(m.vs().pairs(), 2u);
  EXPECT_NEAR(m.vs().mean(), -0.04, 1e-9);
  EXPECT_NEAR(m.vs().low(), -0.1670620, 1e-6);
  EXPECT_NEAR(m.vs().high(), 0.0870620, 1e-6);
  EXPECT_FALSE(m.vs().significant());
}

TEST_F(StoreTest, ReliabilityComesBackWithMetricsDerivedFromBins) {
  store_->sweeps().CreateSweep(Spec("rel", 1)).IgnoreError();
  Assignment a = Acquire(Worker());
  v1::EpochMetrics m = Metrics(1, "test", /*stored ece, deliberately off*/ 0.5);
  ASSERT_TRUE(store_->reports().ReportEpoch(a.lease, {m}).ok());
  auto r = store_->metrics().GetReliability(a.lease.job_id(), 0, "");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->epoch(), 1u);
  ASSERT_EQ(r->bins_size(), 15);
  EXPECT_EQ(r->bins(14).count(), 100);
  // One bin: 100 examples, confidence 0.97, accuracy 0.90.
  EXPECT_NEAR(r->ece(), 0.07, 1e-12);
  EXPECT_NEAR(r->mce(), 0.07, 1e-12);
  EXPECT_NEAR(r->oe(), 0.97 * 0.07, 1e-12);
  EXPECT_EQ(store_->metrics().GetReliability(a.lease.job_id(), 9, "test").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(StoreTest, ReportValidationNamesTheField) {
  store_->sweeps().CreateSweep(Spec("v", 1)).IgnoreError();
  Assignment a = Acquire(Worker());
  v1::EpochMetrics m = Metrics(0, "test", 0.1);
  absl::Status s = store_->reports().ReportEpoch(a.lease, {m});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("metrics[0].epoch"), std::string::npos) << s;
  m = Metrics(1, "Test Split!", 0.1);
  s = store_->reports().ReportEpoch(a.lease, {m});
  EXPECT_NE(s.message().find("metrics[0].split"), std::string::npos) << s;
  EXPECT_EQ(CountRows(""), 0);
}

TEST_F(StoreTest, BinsComeBackBitForBitAndAsRowsOfTheView) {
  store_->sweeps().CreateSweep(Spec("bins", 1)).IgnoreError();
  Assignment a = Acquire(Worker());
  v1::EpochMetrics m = Metrics(1, "test", 0.1);
  // Values whose shortest decimal form is long, tiny or large.
  const double sums[] = {0.1 + 0.2, 1e-300, 12345.678901234567, 1.0 / 3.0};
  m.clear_bins();
  m.set_count(int64_t{4} << 38);  // the bins add up to it
  for (int b = 0; b < 4; ++b) {
    v1::ReliabilityBin* bin = m.add_bins();
    bin->set_count(int64_t{1} << 38);
    bin->set_confidence_sum(sums[b]);
    bin->set_correct(b);
  }
  ASSERT_TRUE(store_->reports().ReportEpoch(a.lease, {m}).ok());
  auto r = store_->metrics().GetReliability(a.lease.job_id(), 1, "test");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->bins_size(), 4);
  for (int b = 0; b < 4; ++b) {
    EXPECT_EQ(r->bins(b).count(), int64_t{1} << 38);
    EXPECT_EQ(r->bins(b).confidence_sum(), sums[b]) << "bin " << b;
    EXPECT_EQ(r->bins(b).correct(), b);
  }
  v1::MetricsFilter f;
  f.set_include_bins(true);
  std::string token;
  auto rows = store_->metrics().QueryMetrics(f, &token);
  ASSERT_TRUE(rows.ok() && rows->size() == 1u);
  EXPECT_EQ((*rows)[0].bins(0).confidence_sum(), sums[0]);
  // reliability_bins is still a row per bin for anyone reading the file.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db,
                               "SELECT bin, count, correct FROM "
                               "reliability_bins WHERE job_id = ? ORDER BY bin",
                               -1, &st, nullptr),
            SQLITE_OK);
  sqlite3_bind_int64(st, 1, a.lease.job_id());
  int n = 0;
  while (sqlite3_step(st) == SQLITE_ROW) {
    EXPECT_EQ(sqlite3_column_int(st, 0), n);
    EXPECT_EQ(sqlite3_column_int64(st, 1), int64_t{1} << 38);
    EXPECT_EQ(sqlite3_column_int(st, 2), n);
    ++n;
  }
  EXPECT_EQ(n, 4);
  sqlite3_finalize(st);
  sqlite3_close(db);
  // Reporting the epoch again without bins leaves none behind.
  m.clear_bins();
  ASSERT_TRUE(store_->reports().ReportEpoch(a.lease, {m}).ok());
  EXPECT_EQ(store_->metrics().GetReliability(a.lease.job_id(), 1, "test")->bins_size(),
            0);
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
        "INSERT INTO epoch_metrics (job_id, epoch, split, count) VALUES (",
        job, ", 1, 'test', 100);",
        "INSERT INTO reliability_bins VALUES (", job,
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

TEST_F(StoreTest, BadBinsAreRefusedNamingTheBin) {
  store_->sweeps().CreateSweep(Spec("badbins", 1)).IgnoreError();
  Assignment a = Acquire(Worker());
  v1::EpochMetrics m = Metrics(1, "test", 0.1);
  m.mutable_bins(3)->set_correct(5);  // more correct than examples
  absl::Status s = store_->reports().ReportEpoch(a.lease, {m});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("metrics[0].bins[3]"), std::string::npos) << s;
  m = Metrics(1, "test", 0.1);
  m.mutable_bins(14)->set_confidence_sum(std::nan(""));
  s = store_->reports().ReportEpoch(a.lease, {m});
  EXPECT_NE(s.message().find("metrics[0].bins[14]"), std::string::npos) << s;
  EXPECT_EQ(CountRows(""), 0);
}

TEST_F(StoreTest, ImpossibleMetricsAreRefusedNamingTheFieldAndRange) {
  store_->sweeps().CreateSweep(Spec("badmetrics", 1)).IgnoreError();
  Assignment a = Acquire(Worker());
  struct Case {
    const char* field;
    std::function<void(v1::EpochMetrics*)> spoil;
  };
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<Case> cases = {
      {"metrics[0].accuracy", [](auto* m) { m->set_accuracy(-5); }},
      {"metrics[0].ece", [](auto* m) { m->set_ece(1.5); }},
      {"metrics[0].nll", [&](auto* m) { m->set_nll(inf); }},
      {"metrics[0].brier", [](auto* m) { m->set_brier(std::nan("")); }},
      {"metrics[0].temperature", [](auto* m) { m->set_temperature(-1); }},
      {"metrics[0].auroc", [](auto* m) { m->set_auroc(2); }},
      {"metrics[0].lr", [&](auto* m) { m->set_lr(-inf); }},
      {"metrics[0].count", [](auto* m) { m->set_count(-1); }},
      // Two bins of INT64_MAX once summed to a negative count.
      {"metrics[0].bins[0].count",
       [](auto* m) {
         m->mutable_bins(0)->set_count(INT64_MAX);
         m->mutable_bins(1)->set_count(INT64_MAX);
       }},
      // The bins must account for the split's examples.
      {"metrics[0].bins must add up to count 100",
       [](auto* m) { m->mutable_bins(14)->set_count(99); }},
  };
  for (const Case& c : cases) {
    v1::EpochMetrics m = Metrics(1, "test", 0.1);
    c.spoil(&m);
    absl::Status s = store_->reports().ReportEpoch(a.lease, {m});
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_NE(s.message().find(c.field), std::string::npos) << s;
  }
  EXPECT_EQ(CountRows(""), 0);
  // A negative training loss is possible (ERL) and accepted.
  v1::EpochMetrics ok = Metrics(1, "test", 0.1);
  ok.set_train_loss(-0.25);
  EXPECT_TRUE(store_->reports().ReportEpoch(a.lease, {ok}).ok());
}

TEST_F(StoreTest, ACheckpointIsRecordedOnlyAfterEveryEpochItCovers) {
  store_->sweeps().CreateSweep(Spec("ckpt", 1)).IgnoreError();  // 3 epochs a job
  Assignment a = Acquire(Worker());
  ASSERT_TRUE(store_->reports().ReportEpoch(a.lease, {Metrics(1, "test", 0.1)}).ok());
  // Epoch 2 never arrived (its insert failed): a checkpoint at 2 would make
  // the next attempt resume at 3 and epoch 2 would be lost for good.
  absl::Status s = store_->reports().RecordCheckpoint(a.lease, 2, "job-1/2.pt");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_NE(s.message().find("only 1 of its epochs 1..2"), std::string::npos)
      << s;
  EXPECT_EQ(store_->sweeps().GetJob(a.lease.job_id())->checkpoint_epoch(), 0u);
  // The same in one streamed batch: epoch 1, then a checkpoint at 2.
  v1::WorkerReport ckpt;
  *ckpt.mutable_checkpoint()->mutable_lease() = a.lease;
  ckpt.mutable_checkpoint()->set_epoch(2);
  ckpt.mutable_checkpoint()->set_path("job-1/2.pt");
  std::vector<const v1::WorkerReport*> batch = {&ckpt};
  EXPECT_EQ(store_->reports().StoreReports(batch)[0].status.code(),
            absl::StatusCode::kUnavailable);
  // Resent in order, epoch 2 and then the checkpoint, both go in.
  ASSERT_TRUE(store_->reports().ReportEpoch(a.lease, {Metrics(2, "test", 0.1)}).ok());
  EXPECT_TRUE(store_->reports().RecordCheckpoint(a.lease, 2, "job-1/2.pt").ok());
  EXPECT_EQ(store_->sweeps().GetJob(a.lease.job_id())->checkpoint_epoch(), 2u);
  // Epochs outside the job's are refused.
  s = store_->reports().RecordCheckpoint(a.lease, 4, "job-1/4.pt");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("epoch must be in [1, 3]"), std::string::npos)
      << s;
  EXPECT_EQ(store_->reports().RecordCheckpoint(a.lease, 0, "job-1/0.pt").code(),
            absl::StatusCode::kInvalidArgument);
  // And paths that would lead outside the checkpoint directory, or to a
  // device, or hold a NUL: refused naming the field, nothing recorded.
  for (const std::string& bad :
       {std::string("ck\0pt", 5), std::string("/etc/passwd"),
        std::string("../../etc/shadow"), std::string("job-1/../../x"),
        std::string("job-1//x"), std::string("./x"), std::string("job 1/x"),
        std::string("job-1/x\n"), std::string("/dev/zero")}) {
    absl::Status refused = store_->reports().RecordCheckpoint(a.lease, 2, bad);
    EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(refused.message().find("path"), std::string::npos) << refused;
  }
  EXPECT_EQ(store_->sweeps().GetJob(a.lease.job_id())->checkpoint(), "job-1/2.pt");
}

TEST_F(StoreTest, StreamedReportsApplyInOrderEachFencedOnItsOwn) {
  store_->sweeps().CreateSweep(Spec("stream", 1)).IgnoreError();
  const int64_t w = Worker();
  Assignment a = Acquire(w);
  std::vector<v1::WorkerReport> reports(7);
  *reports[0].mutable_epoch()->mutable_lease() = a.lease;
  *reports[0].mutable_epoch()->add_metrics() = Metrics(1, "test", 0.1);
  reports[1] = reports[0];  // a stale attempt
  reports[1].mutable_epoch()->mutable_lease()->set_attempt(a.lease.attempt() +
                                                           5);
  // reports[2] holds nothing
  *reports[3].mutable_checkpoint()->mutable_lease() = a.lease;
  reports[3].mutable_checkpoint()->set_epoch(1);
  reports[3].mutable_checkpoint()->set_path("job-1/epoch-1.pt");
  *reports[4].mutable_epoch()->mutable_lease() = a.lease;
  *reports[4].mutable_epoch()->add_metrics() = Metrics(2, "test", 0.2);
  *reports[5].mutable_finish()->mutable_lease() = a.lease;
  reports[5].mutable_finish()->set_outcome(v1::SUCCEEDED);
  // After the finish the lease is no longer running.
  *reports[6].mutable_epoch()->mutable_lease() = a.lease;
  *reports[6].mutable_epoch()->add_metrics() = Metrics(3, "test", 0.3);
  std::vector<const v1::WorkerReport*> ptrs;
  for (const auto& r : reports) ptrs.push_back(&r);
  std::vector<ReportResult> res = store_->reports().StoreReports(ptrs);
  ASSERT_EQ(res.size(), 7u);
  EXPECT_TRUE(res[0].status.ok()) << res[0].status;
  EXPECT_EQ(res[1].status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(res[2].status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(res[3].status.ok()) << res[3].status;
  EXPECT_TRUE(res[4].status.ok()) << res[4].status;
  EXPECT_TRUE(res[5].status.ok()) << res[5].status;
  EXPECT_EQ(res[5].state, v1::SUCCEEDED);
  EXPECT_EQ(res[6].status.code(), absl::StatusCode::kFailedPrecondition)
      << res[6].status;
  // A refusal says the job's state when the attempt is still the lease's.
  EXPECT_EQ(res[1].state, v1::JOB_STATE_UNSPECIFIED);
  EXPECT_EQ(res[6].state, v1::SUCCEEDED);
  auto job = store_->sweeps().GetJob(a.lease.job_id());
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), v1::SUCCEEDED);
  EXPECT_EQ(job->last_epoch(), 2u);
  EXPECT_EQ(job->checkpoint(), "job-1/epoch-1.pt");
  EXPECT_EQ(job->checkpoint_epoch(), 1u);
  EXPECT_EQ(CountRows("test"), 2);
  // The same batch again (a worker resending after a lost ack): the epochs
  // were stored once, the finish is a repeat, nothing changes.
  res = store_->reports().StoreReports(ptrs);
  EXPECT_EQ(res[0].status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(res[5].status.ok());
  EXPECT_EQ(res[5].state, v1::SUCCEEDED);
  EXPECT_EQ(CountRows("test"), 2);
}

TEST_F(StoreTest, AJobNeverFinishesOrCheckpointsPastAnEpochThatWasNotStored) {
  // The predictions file fills up while the database still has room: the
  // epoch carrying predictions is refused, and so must be what the worker
  // sent after it (its checkpoint and finish), in this batch and in later
  // ones, until it resends that epoch; then all goes in.
  store_->sweeps().CreateSweep(Spec("hole", 1)).IgnoreError();
  Assignment a = Acquire(Worker());
  std::vector<v1::WorkerReport> reports(4);
  *reports[0].mutable_epoch()->mutable_lease() = a.lease;
  *reports[0].mutable_epoch()->add_metrics() = Metrics(1, "test", 0.1);
  *reports[1].mutable_epoch()->mutable_lease() = a.lease;
  *reports[1].mutable_epoch()->add_metrics() = Metrics(2, "test", 0.2);
  *reports[1].mutable_epoch()->add_predictions() = MakePredictions(2, 50, 0.8f, 0);
  *reports[2].mutable_checkpoint()->mutable_lease() = a.lease;
  reports[2].mutable_checkpoint()->set_epoch(2);
  reports[2].mutable_checkpoint()->set_path("job-1/epoch-2.pt");
  *reports[3].mutable_finish()->mutable_lease() = a.lease;
  reports[3].mutable_finish()->set_outcome(v1::SUCCEEDED);
  std::vector<const v1::WorkerReport*> ptrs;
  for (const auto& r : reports) ptrs.push_back(&r);
  env_.set_full(true);
  std::vector<ReportResult> res = store_->reports().StoreReports(ptrs);
  ASSERT_EQ(res.size(), 4u);
  EXPECT_TRUE(res[0].status.ok()) << res[0].status;
  EXPECT_EQ(res[1].status.code(), absl::StatusCode::kResourceExhausted) << res[1].status;
  EXPECT_EQ(res[2].status.code(), absl::StatusCode::kAborted) << res[2].status;
  EXPECT_EQ(res[3].status.code(), absl::StatusCode::kAborted) << res[3].status;
  EXPECT_NE(res[3].status.message().find("epoch 2 is not stored yet"),
            std::string::npos) << res[3].status;
  // A later batch with only the finish: still refused.
  EXPECT_EQ(store_->reports().StoreReports({ptrs[3]})[0].status.code(),
            absl::StatusCode::kAborted);
  auto job = store_->sweeps().GetJob(a.lease.job_id());
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), v1::RUNNING);
  EXPECT_EQ(job->last_epoch(), 1u);
  EXPECT_EQ(job->checkpoint_epoch(), 0u);
  // Space again; the worker resends from the oldest unacknowledged report.
  env_.set_full(false);
  res = store_->reports().StoreReports({ptrs[1], ptrs[2], ptrs[3]});
  for (const ReportResult& r : res) EXPECT_TRUE(r.status.ok()) << r.status;
  job = store_->sweeps().GetJob(a.lease.job_id());
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), v1::SUCCEEDED);
  EXPECT_EQ(job->last_epoch(), 2u);
  EXPECT_EQ(job->checkpoint_epoch(), 2u);
  auto kept = store_->metrics().GetPredictions(a.lease.job_id(), 2, "test");
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(kept->probabilities(), reports[1].epoch().predictions(0).probabilities());
}

TEST_F(StoreTest, MoreMetricsHoldOnlyTableMetricsWithoutAFieldOfTheirOwn) {
  store_->sweeps().CreateSweep(Spec("more", 1)).IgnoreError();
  Assignment a = Acquire(Worker());
  for (const char* name : {"bogus", "ece"}) {
    v1::EpochMetrics m = Metrics(1, "test", 0.1);
    (*m.mutable_more_metrics())[name] = 0.5;
    const absl::Status s = store_->reports().ReportEpoch(a.lease, {m});
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_NE(s.message().find(absl::StrCat("more_metrics holds \"", name)),
              std::string::npos)
        << s;
  }
  EXPECT_EQ(CountRows("test"), 0);
}

TEST_F(StoreTest, UnaryFinishAndCheckpointAreRefusedPastAnUnstoredEpoch) {
  // The unary RPCs go through the report stream's checks: a finish or a
  // checkpoint sent alone after an epoch that could not be stored must not
  // end the job with that epoch missing.
  store_->sweeps().CreateSweep(Spec("unary-hole", 1)).IgnoreError();
  Assignment a = Acquire(Worker());
  ASSERT_TRUE(store_->reports().ReportEpoch(a.lease, {Metrics(1, "test", 0.1)}).ok());
  v1::ReportEpochRequest second;
  *second.mutable_lease() = a.lease;
  *second.add_metrics() = Metrics(2, "test", 0.2);
  *second.add_predictions() = MakePredictions(2, 50, 0.8f, 0);
  env_.set_full(true);
  EXPECT_TRUE(IsStorageFull(store_->reports().ReportEpoch(second)));
  env_.set_full(false);
  const absl::Status checkpoint =
      store_->reports().RecordCheckpoint(a.lease, 2, "job-1/epoch-2.pt");
  EXPECT_EQ(checkpoint.code(), absl::StatusCode::kAborted) << checkpoint;
  const absl::StatusOr<v1::JobState> finish =
      store_->reports().FinishJob(a.lease, v1::SUCCEEDED, "");
  EXPECT_EQ(finish.status().code(), absl::StatusCode::kAborted)
      << finish.status();
  auto job = store_->sweeps().GetJob(a.lease.job_id());
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), v1::RUNNING);
  EXPECT_EQ(job->last_epoch(), 1u);
  EXPECT_EQ(job->checkpoint_epoch(), 0u);
  // The epoch resent, the same unary calls go through.
  ASSERT_TRUE(store_->reports().ReportEpoch(second).ok());
  EXPECT_TRUE(
      store_->reports().RecordCheckpoint(a.lease, 2, "job-1/epoch-2.pt").ok());
  {
    auto done = store_->reports().FinishJob(a.lease, v1::SUCCEEDED, "");
    ASSERT_TRUE(done.ok()) << done.status();
    EXPECT_EQ(*done, v1::SUCCEEDED);
  }
}

TEST_F(StoreTest, PreparedReportsWriteTheirBytesOnceAndKeepEveryRefusal) {
  // The coordinator's path: each report is prepared (checked, its bytes
  // appended) where it was received, then stored in a batch.
  store_->sweeps().CreateSweep(Spec("prepared", 1)).IgnoreError();
  Assignment a = Acquire(Worker());
  const std::string file = path_ + ".predictions";
  const auto file_size = [&] {
    return static_cast<int64_t>(fs::file_size(file));
  };
  std::vector<v1::WorkerReport> reports(4);
  *reports[0].mutable_epoch()->mutable_lease() = a.lease;
  *reports[0].mutable_epoch()->add_metrics() = Metrics(1, "test", 0.1);
  *reports[0].mutable_epoch()->add_predictions() = MakePredictions(1, 50, 0.8f, 0);
  // Refused by its own checks: its bytes are never written.
  *reports[1].mutable_epoch()->mutable_lease() = a.lease;
  *reports[1].mutable_epoch()->add_metrics() = Metrics(2, "test", 0.2);
  *reports[1].mutable_epoch()->add_predictions() = MakePredictions(2, 50, 0.8f, 0);
  reports[1].mutable_epoch()->mutable_predictions(0)->mutable_labels()->pop_back();
  *reports[2].mutable_epoch()->mutable_lease() = a.lease;
  *reports[2].mutable_epoch()->add_metrics() = Metrics(2, "test", 0.2);
  *reports[2].mutable_epoch()->add_predictions() = MakePredictions(2, 50, 0.7f, 1);
  *reports[3].mutable_finish()->mutable_lease() = a.lease;
  reports[3].mutable_finish()->set_outcome(v1::SUCCEEDED);
  const int64_t before = file_size();
  // What was sent, to compare with what is read back: preparing drops the
  // bytes it wrote from the report.
  const std::vector<v1::WorkerReport> sent = reports;
  std::vector<PreparedReport> prepared;
  for (auto& r : reports) prepared.push_back(store_->reports().PrepareReport(&r));
  EXPECT_TRUE(reports[0].epoch().predictions(0).probabilities().empty());
  EXPECT_EQ(reports[0].epoch().predictions(0).count(), 50u);
  // A refused report keeps its bytes (nothing was written).
  EXPECT_EQ(reports[1].epoch().predictions(0).probabilities(),
            sent[1].epoch().predictions(0).probabilities());
  const int64_t one = 50 * 3 * 2 + 50 * 4;  // 50 x 3 float16, 50 int32 labels
  EXPECT_EQ(file_size() - before, 2 * one);   // reports 0 and 2, once each
  EXPECT_EQ(prepared[1].checked.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(prepared[1].checked.message().find("predictions[0].labels"),
            std::string::npos) << prepared[1].checked;
  std::vector<const v1::WorkerReport*> ptrs;
  std::vector<const PreparedReport*> pre;
  for (size_t i = 0; i < reports.size(); ++i) {
    ptrs.push_back(&reports[i]);
    pre.push_back(&prepared[i]);
  }
  std::vector<ReportResult> res = store_->reports().StoreReports(ptrs, pre);
  EXPECT_TRUE(res[0].status.ok()) << res[0].status;
  EXPECT_EQ(res[1].status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(res[2].status.ok()) << res[2].status;
  EXPECT_TRUE(res[3].status.ok()) << res[3].status;
  EXPECT_EQ(file_size() - before, 2 * one);  // storing wrote no bytes again
  for (uint32_t epoch : {1u, 2u}) {
    auto kept = store_->metrics().GetPredictions(a.lease.job_id(), epoch, "test");
    ASSERT_TRUE(kept.ok()) << kept.status();
    const v1::Predictions& want =
        sent[epoch == 1 ? 0 : 2].epoch().predictions(0);
    EXPECT_EQ(kept->probabilities(), want.probabilities());
    EXPECT_EQ(kept->labels(), want.labels());
  }
  // A report prepared with the disk full leaves the same hole as one
  // whose bytes could not be written while storing.
  store_->sweeps().CreateSweep(Spec("prepared-full", 1)).IgnoreError();
  Assignment b = Acquire(Worker());
  v1::WorkerReport full, finish;
  *full.mutable_epoch()->mutable_lease() = b.lease;
  *full.mutable_epoch()->add_metrics() = Metrics(1, "test", 0.1);
  *full.mutable_epoch()->add_predictions() = MakePredictions(1, 50, 0.8f, 0);
  *finish.mutable_finish()->mutable_lease() = b.lease;
  finish.mutable_finish()->set_outcome(v1::SUCCEEDED);
  env_.set_full(true);
  const PreparedReport p_full = store_->reports().PrepareReport(&full);
  const PreparedReport p_finish = store_->reports().PrepareReport(&finish);
  // Not written, so not dropped: the report still holds its bytes.
  EXPECT_FALSE(full.epoch().predictions(0).probabilities().empty());
  EXPECT_TRUE(p_full.checked.ok());
  EXPECT_TRUE(IsStorageFull(p_full.appended)) << p_full.appended;
  res = store_->reports().StoreReports({&full, &finish}, {&p_full, &p_finish});
  EXPECT_TRUE(IsStorageFull(res[0].status)) << res[0].status;
  EXPECT_EQ(res[1].status.code(), absl::StatusCode::kAborted) << res[1].status;
  auto job = store_->sweeps().GetJob(b.lease.job_id());
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), v1::RUNNING);
}

TEST_F(StoreTest, AStreamedReportOfACancelledJobIsRefusedSayingCancelled) {
  store_->sweeps().CreateSweep(Spec("cancelled", 1)).IgnoreError();
  Assignment a = Acquire(Worker());
  ASSERT_TRUE(store_->sweeps().CancelJob(a.lease.job_id()).ok());
  v1::WorkerReport r;
  *r.mutable_epoch()->mutable_lease() = a.lease;
  *r.mutable_epoch()->add_metrics() = Metrics(1, "test", 0.1);
  std::vector<ReportResult> res = store_->reports().StoreReports({&r});
  EXPECT_EQ(res[0].status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(res[0].state, v1::CANCELLED);
  EXPECT_EQ(CountRows(""), 0);
}

TEST_F(StoreTest, EventsRecordTheLifecycle) {
  auto sweep = store_->sweeps().CreateSweep(Spec("events", 1));
  int64_t w = Worker();
  Assignment a = Acquire(w);
  store_->reports().FinishJob(a.lease, v1::FAILED, "loss is nan").IgnoreError();
  auto events = store_->metrics().ListEvents(sweep->id(), 0, 0, 100);
  ASSERT_TRUE(events.ok());
  std::vector<std::string> kinds;
  for (const auto& e : *events) kinds.push_back(e.kind());
  EXPECT_EQ(kinds, (std::vector<std::string>{"submitted", "leased", "failed"}));
  EXPECT_EQ((*events)[2].message(), "loss is nan");
  EXPECT_EQ(store_->sweeps().GetJob(a.lease.job_id())->error(), "loss is nan");
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
    ASSERT_TRUE(store_->reports().ReportEpoch(a.lease, {Metrics(1, "test", 0.1)}).ok());
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

TEST_F(StoreTest, ConcurrentReportsAreFencedEachOnItsOwn) {
  // Eight jobs reported from eight threads at once, with a
  // ninth thread sending stale reports in between: every good report is
  // stored once, every stale one is refused, and none disturbs another.
  v1::SweepSpec s = Spec("group", 1);
  s.clear_seeds();
  for (int i = 0; i < 9; ++i) s.add_seeds(i);
  s.clear_methods();
  s.add_methods()->set_name("baseline");
  ASSERT_TRUE(store_->sweeps().CreateSweep(s).ok());
  int64_t w = Worker();
  std::vector<Assignment> live;
  for (int i = 0; i < 8; ++i) live.push_back(Acquire(w));
  Assignment doomed = Acquire(w);
  ASSERT_TRUE(
      store_->sweeps().CancelJob(doomed.lease.job_id()).ok());  // its lease is now stale
  std::atomic<int> failures{0}, refused{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      for (uint32_t e = 1; e <= 40; ++e) {
        if (!store_->reports().ReportEpoch(live[i].lease, {Metrics(e, "test", 0.01 * i)})
                 .ok())
          failures++;
      }
    });
  }
  threads.emplace_back([&] {
    for (uint32_t e = 1; e <= 40; ++e) {
      if (absl::IsFailedPrecondition(
              store_->reports().ReportEpoch(doomed.lease, {Metrics(e, "test", 0.5)})))
        refused++;
    }
  });
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(refused.load(), 40);
  EXPECT_EQ(CountRows("test"), 8 * 40);
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(store_->sweeps().GetJob(live[i].lease.job_id())->last_epoch(), 40u);
  EXPECT_EQ(store_->sweeps().GetJob(doomed.lease.job_id())->last_epoch(), 0u);
}

TEST_F(StoreTest, ReadersSeeWholeReportsWhileAWriterWrites) {
  store_->sweeps().CreateSweep(Spec("concurrent", 1)).IgnoreError();
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
  while (e < 300 || (checks.load() < 20 && e < 20000)) {
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
