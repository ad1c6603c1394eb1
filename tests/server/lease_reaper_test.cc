// Leases over the wire (server/lease_reaper.h): a silent worker's lease
// expires and its late report is refused; a restart gives running leases
// a grace period, and the reaper's passes after it keep them.

#include "server/lease_reaper.h"

#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "base/clock.h"
#include "server/dispatcher.h"
#include "server/watch_hub.h"
#include "storage/store.h"
#include "tests/scratch_dir.h"
#include "tests/server/api_fixture.h"

namespace mixcal::server {
namespace {

namespace fs = std::filesystem;

class LeaseReaperTest : public ApiTest {};

TEST_F(LeaseReaperTest, StaleLeaseReportIsRefusedOverTheWire) {
  Start(false, /*lease_s=*/0.4);
  v1::Sweep sweep;
  ASSERT_TRUE(Submit(Spec("stale"), &sweep).ok());
  const int64_t w1 = Register(), w2 = Register();
  v1::AcquireJobResponse first = Acquire(w1);
  ASSERT_TRUE(first.has_job());
  // No heartbeats: the reaper requeues it, and w2 gets attempt 2 (the
  // long poll returns as soon as it is requeued).
  v1::AcquireJobResponse second = Acquire(w2);
  ASSERT_TRUE(second.has_job());
  EXPECT_EQ(second.lease().attempt(), 2u);
  grpc::ClientContext ctx;
  v1::ReportEpochRequest req;
  *req.mutable_lease() = first.lease();
  v1::EpochMetrics* m = req.add_metrics();
  m->set_epoch(1);
  m->set_split("test");
  v1::ReportEpochResponse resp;
  grpc::Status s = workers_->ReportEpoch(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
      << s.error_message();
  grpc::ClientContext qctx;
  v1::QueryMetricsResponse rows;
  v1::QueryMetricsRequest all;
  all.mutable_filter()->set_sweep_id(sweep.id());
  ASSERT_TRUE(api_->QueryMetrics(&qctx, all, &rows).ok());
  EXPECT_EQ(rows.rows_size(), 0);
}

TEST(CoordinatorRestartTest, RunningLeasesSurviveARestartForALease) {
  const fs::path dir = fs::temp_directory_path() /
                       ("mixcal_restart_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  ManualClock clock;
  CoordinatorOptions o;
  o.listen = "127.0.0.1:0";
  o.db_path = (dir / "mixcal.db").string();
  o.lease_ms = 1000;  // the reaper looks every 100 ms
  o.heartbeat_ms = 250;
  o.clock = &clock;
  int64_t job_id = 0;
  {
    auto c = Coordinator::Start(o);
    ASSERT_TRUE(c.ok()) << c.status();
    auto ch = grpc::CreateChannel("127.0.0.1:" + std::to_string((*c)->port()),
                                  grpc::InsecureChannelCredentials());
    auto api = v1::ExperimentService::NewStub(ch);
    auto workers = v1::WorkerService::NewStub(ch);
    grpc::ClientContext sc;
    v1::SubmitSweepRequest sr;
    *sr.mutable_spec() = Spec("restart");
    sr.mutable_spec()->add_seeds(0);
    sr.mutable_spec()->add_seeds(1);  // a second job, for the probe below
    v1::Sweep sweep;
    ASSERT_TRUE(api->SubmitSweep(&sc, sr, &sweep).ok());
    ASSERT_EQ(sweep.job_ids_size(), 2);
    grpc::ClientContext rc;
    v1::RegisterWorkerRequest reg;
    reg.set_host("h");
    reg.set_device("cpu");
    v1::RegisterWorkerResponse w;
    ASSERT_TRUE(workers->RegisterWorker(&rc, reg, &w).ok());
    grpc::ClientContext ac;
    v1::AcquireJobRequest ar;
    ar.set_worker_id(w.worker_id());
    ar.set_wait_ms(2000);
    v1::AcquireJobResponse a;
    ASSERT_TRUE(workers->AcquireJob(&ac, ar, &a).ok());
    ASSERT_TRUE(a.has_job());
    job_id = a.job().id();
  }
  // Down for five lease lengths (the job's lease ran out four ago); then up
  // again on the same file.
  clock.AdvanceSeconds(5);
  auto c = Coordinator::Start(o);
  ASSERT_TRUE(c.ok()) << c.status();
  // A probe that the reaper has judged leases since: the other job, leased
  // after the start-up (by another process on the file) for 1 us, so the
  // start-up grace never covered it.
  int64_t probe_id = 0;
  {
    storage::StoreOptions so;
    so.path = o.db_path;
    so.clock = &clock;
    auto other = storage::Store::Open(so);
    ASSERT_TRUE(other.ok()) << other.status();
    v1::WorkerInfo info;
    info.set_host("probe");
    info.set_device("cpu");
    absl::StatusOr<int64_t> worker = (*other)->queue().RegisterWorker(info);
    ASSERT_TRUE(worker.ok()) << worker.status();
    auto probe = (*other)->queue().AcquireJob(*worker, /*lease_us=*/1);
    ASSERT_TRUE(probe.ok()) << probe.status();
    ASSERT_TRUE(probe->has_value());
    probe_id = (*probe)->job.id();
  }
  // Half a lease on, inside the grace: a reaper pass now expires the probe's
  // lease, and the restarted job's too unless the start-up extended it.
  clock.AdvanceMicros(o.lease_ms * 1000 / 2);
  auto api = v1::ExperimentService::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string((*c)->port()),
                          grpc::InsecureChannelCredentials()));
  auto get_job = [&](int64_t id) {
    grpc::ClientContext gc;
    v1::GetJobRequest g;
    g.set_job_id(id);
    v1::Job job;
    grpc::Status s = api->GetJob(&gc, g, &job);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return job;
  };
  // The reaper looks every 100 ms; 30 s is for a loaded machine.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (get_job(probe_id).state() != v1::QUEUED &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(get_job(probe_id).state(), v1::QUEUED)
      << "no reaper pass expired the probe's lease";
  const v1::Job job = get_job(job_id);
  EXPECT_EQ(job.state(), v1::RUNNING) << "the lease expired at the restart";
  EXPECT_EQ(job.attempt(), 1u);
  c->reset();
  fs::remove_all(dir);
}

TEST(LeaseReaperPassTest, AFailingPassIsReturnedAndLoggedAndTheNextTriesAgain) {
  const fs::path dir = ::mixcal::testing::FreshTestDir("reaper_fails");
  const std::string path = (dir / "mixcal.db").string();
  ManualClock clock;
  auto store = storage::Store::Open({.path = path, .clock = &clock});
  ASSERT_TRUE(store.ok()) << store.status();
  {
    WatchHub hub(store->get(), 1 << 20);
    Dispatcher dispatcher(store->get(), 30'000'000, &clock,
                          [](const v1::Job&) {});
    LeaseReaper reaper(store->get(), &hub, &dispatcher, absl::Seconds(60),
                       &clock, 30'000'000);
    EXPECT_TRUE(reaper.ReapOnce().ok());
    // Another program takes the jobs table away under the store: the pass
    // fails, says so, and is not taken for a pass that expired nothing.
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(raw, "ALTER TABLE jobs RENAME TO jobs_away", nullptr,
                           nullptr, nullptr),
              SQLITE_OK);
    ::testing::internal::CaptureStderr();
    const absl::Status failed = reaper.ReapOnce();
    const std::string log = ::testing::internal::GetCapturedStderr();
    EXPECT_FALSE(failed.ok());
    EXPECT_NE(log.find("expiring leases failed"), std::string::npos) << log;
    EXPECT_NE(log.find("jobs"), std::string::npos) << log;
    ASSERT_EQ(sqlite3_exec(raw, "ALTER TABLE jobs_away RENAME TO jobs", nullptr,
                           nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(raw);
    EXPECT_TRUE(reaper.ReapOnce().ok());
  }
  store->reset();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mixcal::server
