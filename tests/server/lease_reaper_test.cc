// Leases over the wire (server/lease_reaper.h): a silent worker's lease
// expires and its late report is refused; a restart gives running leases
// a grace period before the reaper judges them.

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

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
    v1::Sweep sweep;
    ASSERT_TRUE(api->SubmitSweep(&sc, sr, &sweep).ok());
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
  // Down for five lease lengths; then up again on the same file.
  clock.AdvanceSeconds(5);
  auto c = Coordinator::Start(o);
  ASSERT_TRUE(c.ok()) << c.status();
  std::this_thread::sleep_for(std::chrono::milliseconds(400));  // reaper passes
  auto api = v1::ExperimentService::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string((*c)->port()),
                          grpc::InsecureChannelCredentials()));
  grpc::ClientContext gc;
  v1::GetJobRequest g;
  g.set_job_id(job_id);
  v1::Job job;
  ASSERT_TRUE(api->GetJob(&gc, g, &job).ok());
  EXPECT_EQ(job.state(), v1::RUNNING) << "the lease expired at the restart";
  EXPECT_EQ(job.attempt(), 1u);
  c->reset();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mixcal::server
