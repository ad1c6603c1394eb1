// The database on a small tmpfs that fills up while jobs run: writes are
// refused with RESOURCE_EXHAUSTED naming the database, the coordinator stays
// up, workers keep their unacknowledged reports and resend them, leases
// survive, and once space is freed everything finishes with every epoch
// stored once and `PRAGMA integrity_check` ok. Also: broken database files
// at start-up end the coordinator with one line naming the file.
//
// Mounting a tmpfs needs root (CI runs as root); elsewhere the test skips,
// saying so.

#include <sqlite3.h>
#include <sys/mount.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "base/clock.h"
#include "server/dispatcher.h"
#include "server/lease_reaper.h"
#include "server/watch_hub.h"
#include "storage/store.h"
#include "tests/e2e/harness.h"
#include "tests/faults/audit.h"
#include "worker/core/trainer.h"

namespace mixcal::testing {
namespace {

namespace fs = std::filesystem;

bool Ended(const v1::Sweep& s) {
  return s.state() == v1::SWEEP_SUCCEEDED || s.state() == v1::SWEEP_FAILED ||
         s.state() == v1::SWEEP_CANCELLED;
}

// A tmpfs of `megabytes` at `dir`, unmounted when it goes.
class SmallFilesystem {
 public:
  SmallFilesystem(const fs::path& dir, int megabytes) : dir_(dir) {
    fs::create_directories(dir);
    const std::string opts = "size=" + std::to_string(megabytes) + "m";
    mounted_ = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, opts.c_str()) == 0;
    if (!mounted_) error_ = std::strerror(errno);
  }
  ~SmallFilesystem() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

  // Writes a filler file until the filesystem has no space left.
  void Fill() {
    std::FILE* f = std::fopen((dir_ / "filler").c_str(), "ab");
    if (f == nullptr) return;
    std::vector<char> block(64 * 1024, 'x');
    while (std::fwrite(block.data(), 1, block.size(), f) == block.size() &&
           std::fflush(f) == 0) {
    }
    // Then the last bytes a smaller write can take.
    while (std::fwrite(block.data(), 1, 512, f) == 512 && std::fflush(f) == 0) {
    }
    std::fclose(f);
  }
  void Free() { fs::remove(dir_ / "filler"); }

 private:
  fs::path dir_;
  bool mounted_ = false;
  std::string error_;
};

int64_t Count(const std::string& db_path, const std::string& sql) {
  return Audit(db_path).Int(sql);
}

TEST(DiskFullTest, AFullDiskRefusesWritesLosesNothingAndResumes) {
  Cluster c("disk_full");
  SmallFilesystem small(c.dir() / "small", 24);
  if (!small.mounted()) {
    GTEST_SKIP() << "cannot mount a tmpfs here (" << small.error()
                 << "); run as root";
  }
  c.SetDbPath((c.dir() / "small" / "mixcal.db").string());
  // A lease of 4 s: long enough that a loaded machine's scheduling never
  // costs a lease, short enough that each full episode outlasts it.
  ASSERT_TRUE(c.StartCoordinator(/*lease_s=*/4.0, /*heartbeat_s=*/0.25));
  constexpr int kEpochs = 12;
  v1::SweepSpec spec = TinySweep("full", kEpochs, 2, /*train_count=*/8192);
  int64_t sweep_id = 0;
  {
    grpc::ClientContext ctx;
    v1::SubmitSweepRequest req;
    *req.mutable_spec() = spec;
    v1::Sweep sweep;
    ASSERT_TRUE(c.api().SubmitSweep(&ctx, req, &sweep).ok());
    sweep_id = sweep.id();
  }
  c.StartWorker();
  c.StartWorker();
  ASSERT_TRUE(
      WaitFor([&] { return c.Metrics(sweep_id, "test").size() >= 2; }, 120));

  int refused = 0;
  for (int episode = 0; episode < 3; ++episode) {
    small.Fill();
    // While full: a new sweep is refused, RESOURCE_EXHAUSTED naming the
    // file. (SQLite reuses the space its log already holds, so the first
    // writes after filling may still fit: submit until one is refused.)
    grpc::Status status;
    ASSERT_TRUE(WaitFor(
        [&] {
          grpc::ClientContext ctx;
          v1::SubmitSweepRequest req;
          // 5,000 jobs: a few MB, more than the log can hold.
          *req.mutable_spec() = TinySweep("refused", 1, 1000);
          for (double a : {0.1, 0.2, 0.3})
            req.mutable_spec()->mutable_methods(1)->add_values(a);
          v1::Sweep sweep;
          status = c.api().SubmitSweep(&ctx, req, &sweep);
          if (status.ok()) {  // it fit: take it back out of the queue
            grpc::ClientContext cctx;
            v1::CancelSweepRequest creq;
            creq.set_sweep_id(sweep.id());
            v1::Sweep cancelled;
            c.api().CancelSweep(&cctx, creq, &cancelled);
          }
          return status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED;
        },
        20))
        << status.error_code() << " " << status.error_message();
    ++refused;
    EXPECT_NE(status.error_message().find(c.db_path()), std::string::npos)
        << status.error_message();
    EXPECT_NE(status.error_message().find("full"), std::string::npos)
        << status.error_message();
    // Full for longer than a lease: heartbeats cannot be stored meanwhile.
    std::this_thread::sleep_for(std::chrono::seconds(6));
    // Reads still work: the coordinator is up.
    grpc::ClientContext ctx;
    v1::GetSweepRequest get;
    get.set_sweep_id(sweep_id);
    v1::Sweep s;
    ASSERT_TRUE(c.api().GetSweep(&ctx, get, &s).ok());
    small.Free();
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
  ASSERT_TRUE(WaitFor([&] { return Ended(c.GetSweep(sweep_id)); }, 300))
      << Slurp(c.CoordinatorLog());
  EXPECT_EQ(c.GetSweep(sweep_id).state(), v1::SWEEP_SUCCEEDED)
      << Slurp(c.CoordinatorLog());
  const std::string log = Slurp(c.CoordinatorLog());
  EXPECT_NE(log.find("is full"), std::string::npos) << log;
  c.KillWorker(0, SIGTERM);
  c.KillWorker(1, SIGTERM);
  c.KillCoordinator();

  const std::string db = c.db_path();
  EXPECT_EQ(Audit(db).Text("PRAGMA integrity_check"), "ok");
  const std::string job_filter =
      " FROM jobs WHERE sweep_id = " + std::to_string(sweep_id);
  const int64_t jobs = Count(db, "SELECT COUNT(*)" + job_filter);
  ASSERT_EQ(jobs, 4);
  // Every epoch of every job, test split, exactly once; last_epoch agrees.
  EXPECT_EQ(Count(db,
                  "SELECT COUNT(*) FROM epoch_metrics WHERE split = 'test' "
                  "AND job_id IN (SELECT id" +
                      job_filter + ")"),
            jobs * kEpochs);
  EXPECT_EQ(Count(db, "SELECT COUNT(*)" + job_filter +
                          " AND (last_epoch != " + std::to_string(kEpochs) +
                          " OR checkpoint_epoch > last_epoch)"),
            0);
  // No job lost its lease for lack of space: each ran on its first attempt.
  EXPECT_EQ(Count(db, "SELECT MAX(attempt)" + job_filter), 1)
      << Slurp(c.WorkerLog(0)) << Slurp(c.WorkerLog(1)) << log;
  EXPECT_EQ(refused, 3);
}

// One line on stderr naming the file, and a non-zero exit.
// `log` defaults to beside the database.
void ExpectRefusedAtStartUp(const std::string& db, const std::string& what,
                            std::string log = "") {
  if (log.empty()) log = db + ".log";
  Process p({MIXCAL_COORDINATOR_BIN, "--listen=127.0.0.1:0", "--db=" + db},
            log);
  const int status = p.Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0)
      << what << ": " << Slurp(log);
  std::vector<std::string> lines =
      absl::StrSplit(Slurp(log), '\n', absl::SkipEmpty());
  EXPECT_EQ(lines.size(), 1u) << what << ": " << Slurp(log);
  EXPECT_NE(Slurp(log).find(db), std::string::npos) << what << ": "
                                                    << Slurp(log);
}

// A checkpoint directory with no space left: the run ends Unavailable (the
// worker hands the job back and leaves rotation), the process lives, and
// no partial file is left. LibTorch's own file writer used to abort here.
TEST(DiskFullTest, AFullCheckpointDirectoryEndsTheRunWithoutACrash) {
  const fs::path dir = fs::temp_directory_path() /
                       ("mixcal_ckfull_" + std::to_string(getpid()));
  SmallFilesystem small(dir, 1);
  if (!small.mounted()) GTEST_SKIP() << "cannot mount a tmpfs: " << small.error();
  small.Fill();
  calib::TrainConfig c;
  c.dataset = calib::DatasetKind::kSynthetic;
  c.model = calib::ModelKind::kMlp;
  c.epochs = 2;
  c.threads = 1;
  c.predictions = calib::PredictionsMode::kNone;
  c.checkpoint_every = 1;
  c.checkpoint_dir = (dir / "job-1").string();
  int epochs = 0;
  core::TrainHooks hooks;
  hooks.on_epoch = [&](const core::EpochReport&) {
    ++epochs;
    return absl::OkStatus();
  };
  absl::Status s = core::NewTorchTrainer()->Run(c, hooks);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_NE(s.message().find("No space left on device"), std::string::npos)
      << s.message();
  EXPECT_EQ(epochs, 1);  // the epoch was reported before its checkpoint
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    EXPECT_TRUE(name == "filler" || name == "job-1") << name;
  }
}

// A heartbeat that reaches the coordinator but cannot be stored for lack of
// space leaves its lease unextended; the reaper must not take that for a
// dead worker. Time is moved by hand past the lease while heartbeats are
// refused, and space comes back before the reaper looks: the job stays
// RUNNING on its first attempt with a fresh lease.
TEST(DiskFullTest, AHeartbeatRefusedForSpaceCostsNoLease) {
  const fs::path dir = fs::temp_directory_path() /
                       ("mixcal_hbfull_" + std::to_string(getpid()));
  SmallFilesystem small(dir, 2);
  if (!small.mounted()) GTEST_SKIP() << "cannot mount a tmpfs: " << small.error();
  constexpr int64_t kLeaseUs = 5'000'000;
  ManualClock clock;
  auto store = storage::Store::Open(
      {.path = (dir / "mixcal.db").string(), .clock = &clock});
  ASSERT_TRUE(store.ok()) << store.status();
  v1::SweepSpec spec = TinySweep("hb", 3, 1);
  ASSERT_TRUE((*store)->sweeps().CreateSweep(spec).ok());
  v1::WorkerInfo info;
  info.set_host("h");
  info.set_device("cpu");
  absl::StatusOr<int64_t> worker = (*store)->queue().RegisterWorker(info);
  ASSERT_TRUE(worker.ok()) << worker.status();
  auto got = (*store)->queue().AcquireJob(*worker, kLeaseUs);
  ASSERT_TRUE(got.ok() && got->has_value()) << got.status();
  const v1::Lease lease = (*got)->lease;
  const int64_t job_id = (*got)->job.id();
  {
    server::WatchHub hub(store->get(), 1 << 20);
    server::Dispatcher dispatcher(store->get(), kLeaseUs, &clock,
                                  [](const v1::Job&) {});
    server::LeaseReaper reaper(store->get(), &hub, &dispatcher,
                               absl::Seconds(3600), &clock, kLeaseUs);
    small.Fill();
    // SQLite reuses the room its log already has: beat until one is
    // refused (each beat writes the worker's and the lease's rows).
    absl::Status refused;
    for (int i = 0; i < 200000 && refused.ok(); ++i) {
      refused = (*store)->queue().Heartbeat(*worker, {lease}, kLeaseUs).status();
    }
    ASSERT_TRUE(storage::IsStorageFull(refused)) << refused;
    clock.AdvanceMicros(2 * kLeaseUs);  // the lease has run out meanwhile
    // Space comes back before the reaper's next pass: the pass must not
    // take the unextended lease for a dead worker's.
    small.Free();
    EXPECT_TRUE(reaper.ReapOnce().ok());
    auto job = (*store)->sweeps().GetJob(job_id);
    ASSERT_TRUE(job.ok()) << job.status();
    EXPECT_EQ(job->state(), v1::RUNNING);
    EXPECT_EQ(job->attempt(), 1u);
    // And the worker's next heartbeat holds the lease.
    auto beat = (*store)->queue().Heartbeat(*worker, {lease}, kLeaseUs);
    ASSERT_TRUE(beat.ok()) << beat.status();
    EXPECT_EQ(beat->extended.size(), 1u);
  }
  store->reset();
}

// A coordinator (re)started on a full disk serves reads and refuses
// writes, instead of refusing to start; a running job keeps its lease.
// Where SQLite cannot even create its -wal and -shm files, start-up ends
// in one line that says the filesystem is full.
TEST(DiskFullTest, ACoordinatorStartedOnAFullDiskServesReads) {
  Cluster c("full_at_start");
  SmallFilesystem small(c.dir() / "small", 4);
  if (!small.mounted()) GTEST_SKIP() << "cannot mount a tmpfs: " << small.error();
  c.SetDbPath((c.dir() / "small" / "mixcal.db").string());
  ASSERT_TRUE(c.StartCoordinator(/*lease_s=*/5.0, /*heartbeat_s=*/0.25));
  int64_t sweep_id = 0;
  {
    grpc::ClientContext ctx;
    v1::SubmitSweepRequest req;
    *req.mutable_spec() = TinySweep("before", 3, 1);
    v1::Sweep sweep;
    ASSERT_TRUE(c.api().SubmitSweep(&ctx, req, &sweep).ok());
    sweep_id = sweep.id();
  }
  // A job running when the coordinator goes: its lease must be extended at
  // start-up, a write.
  int64_t job_id = 0;
  {
    grpc::ClientContext rc;
    v1::RegisterWorkerRequest reg;
    reg.set_host("h");
    reg.set_device("cpu");
    v1::RegisterWorkerResponse w;
    ASSERT_TRUE(c.workers().RegisterWorker(&rc, reg, &w).ok());
    grpc::ClientContext ac;
    v1::AcquireJobRequest ar;
    ar.set_worker_id(w.worker_id());
    ar.set_wait_ms(2000);
    v1::AcquireJobResponse a;
    ASSERT_TRUE(c.workers().AcquireJob(&ac, ar, &a).ok());
    ASSERT_TRUE(a.has_job());
    job_id = a.job().id();
  }
  c.KillCoordinator();
  // Closed cleanly by another program: SQLite deleted its -wal and -shm,
  // and a full filesystem has no room to make them again.
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(c.db_path().c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "SELECT COUNT(*) FROM jobs", nullptr, nullptr,
                           nullptr),
              SQLITE_OK);  // opens the log, which the close then removes
    sqlite3_close(db);
  }
  ASSERT_FALSE(fs::exists(c.db_path() + "-shm"));
  small.Fill();
  {
    // (The log cannot go on the full filesystem.)
    const std::string log = (c.dir() / "refused.log").string();
    ExpectRefusedAtStartUp(c.db_path(), "full, no -shm", log);
    EXPECT_NE(Slurp(log).find("filesystem is full"), std::string::npos)
        << Slurp(log);
  }
  small.Free();
  ASSERT_TRUE(c.StartCoordinator(/*lease_s=*/5.0, /*heartbeat_s=*/0.25));
  c.KillCoordinator();
  // Killed (its -wal and -shm stay), the log emptied into the database so
  // that any write must grow it.
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(c.db_path().c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "SELECT COUNT(*) FROM jobs", nullptr, nullptr,
                           nullptr),
              SQLITE_OK);
    int persist = 1;
    sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
    sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr,
                 nullptr);
    sqlite3_close(db);
  }
  ASSERT_TRUE(fs::exists(c.db_path() + "-shm"));
  small.Fill();
  ASSERT_TRUE(c.StartCoordinator(/*lease_s=*/5.0, /*heartbeat_s=*/0.25))
      << Slurp(c.CoordinatorLog());
  EXPECT_EQ(c.GetSweep(sweep_id).id(), sweep_id);
  EXPECT_EQ(c.GetJob(job_id).state(), v1::RUNNING);
  {
    grpc::ClientContext ctx;
    v1::SubmitSweepRequest req;
    *req.mutable_spec() = TinySweep("while-full", 3, 200);
    v1::Sweep sweep;
    grpc::Status s = c.api().SubmitSweep(&ctx, req, &sweep);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
        << s.error_message();
  }
  small.Free();
  {
    grpc::ClientContext ctx;
    v1::SubmitSweepRequest req;
    *req.mutable_spec() = TinySweep("after", 3, 1);
    v1::Sweep sweep;
    grpc::Status s = c.api().SubmitSweep(&ctx, req, &sweep);
    EXPECT_TRUE(s.ok()) << s.error_message();
  }
}

TEST(BrokenDatabaseTest, TruncatedForeignAndNewerFilesEndStartUpInOneLine) {
  Cluster c("broken_files");
  const fs::path dir = c.dir();
  // A healthy store to damage: made by the coordinator itself.
  const std::string good = (dir / "good.db").string();
  {
    Process p({MIXCAL_COORDINATOR_BIN, "--listen=127.0.0.1:0", "--db=" + good,
               "--port_file=" + (dir / "port").string()},
              (dir / "good.log").string());
    ASSERT_TRUE(WaitFor([&] { return fs::exists(dir / "port"); }, 20));
    p.Kill(SIGTERM);
    p.Wait();
  }
  ASSERT_GT(fs::file_size(good), 4096u);

  const std::string truncated = (dir / "truncated.db").string();
  fs::copy_file(good, truncated);
  fs::resize_file(truncated, 1000);  // half a page of header
  ExpectRefusedAtStartUp(truncated, "truncated");

  const std::string foreign = (dir / "foreign.db").string();
  {
    sqlite3* db = nullptr;
    sqlite3_open(foreign.c_str(), &db);
    sqlite3_exec(db, "CREATE TABLE photos (id INTEGER, path TEXT)", nullptr,
                 nullptr, nullptr);
    sqlite3_close(db);
  }
  ExpectRefusedAtStartUp(foreign, "foreign");
  EXPECT_EQ(Count(foreign, "SELECT COUNT(*) FROM sqlite_master WHERE name = "
                           "'schema_version'"),
            0);  // not extended with mixcal's tables

  const std::string newer = (dir / "newer.db").string();
  fs::copy_file(good, newer);
  {
    sqlite3* db = nullptr;
    sqlite3_open(newer.c_str(), &db);
    sqlite3_exec(db, "UPDATE schema_version SET version = 999", nullptr,
                 nullptr, nullptr);
    sqlite3_close(db);
  }
  ExpectRefusedAtStartUp(newer, "newer schema");

  const std::string noise = (dir / "noise.db").string();
  {
    std::ofstream out(noise);
    out << std::string(8192, 'z');
  }
  ExpectRefusedAtStartUp(noise, "not SQLite");
}

}  // namespace
}  // namespace mixcal::testing
