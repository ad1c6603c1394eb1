// The heartbeater against a coordinator in this process, and against a
// frozen one (a fake whose Heartbeat never answers) for a call in flight.

#include "worker/heartbeater.h"

#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "tests/worker/worker_fixture.h"

namespace mixcal::worker {
namespace {

class HeartbeaterTest : public WorkerFixture {
 protected:
  Heartbeater::Options Options(absl::Duration interval) {
    Heartbeater::Options o;
    o.stub = workers_.get();
    o.worker_id = worker_id_;
    o.interval = interval;
    o.stop = &stop_;
    return o;
  }
  StopSignal stop_;
};

TEST_F(HeartbeaterTest, ExtendsTheLeaseEveryIntervalWithoutStoppingTraining) {
  LeaseAJob();
  JobControl job(lease_);
  Heartbeater heart(Options(absl::Milliseconds(10)), &job);
  for (int i = 0; i < 3000 && heart.answered() < 3; ++i)
    absl::SleepFor(absl::Milliseconds(10));
  EXPECT_GE(heart.answered(), 3);
  heart.Stop();
  EXPECT_FALSE(job.cancel_flag()->load());
  EXPECT_EQ(Job().state(), v1::RUNNING);
}

TEST_F(HeartbeaterTest, AJobAPersonCancelledIsMarkedCancelledAndStopsTraining) {
  LeaseAJob();
  JobControl job(lease_);
  CancelJob();
  Heartbeater heart(Options(absl::Milliseconds(10)), &job);
  ASSERT_TRUE(job.WaitForStopTraining(absl::Seconds(60)));
  EXPECT_TRUE(job.cancelled());
  EXPECT_FALSE(job.lost());
}

TEST_F(HeartbeaterTest, ALeaseThatIsNotItsOwnIsMarkedLost) {
  LeaseAJob();
  v1::Lease stale = lease_;
  stale.set_token("not-the-token");
  JobControl job(stale);
  Heartbeater heart(Options(absl::Milliseconds(10)), &job);
  ASSERT_TRUE(job.WaitForStopTraining(absl::Seconds(60)));
  EXPECT_TRUE(job.lost());
  EXPECT_FALSE(job.cancelled());
}

TEST_F(HeartbeaterTest, AnUnknownWorkerLosesItsLease) {
  LeaseAJob();
  JobControl job(lease_);
  Heartbeater::Options o = Options(absl::Milliseconds(10));
  o.worker_id = worker_id_ + 1000;  // NOT_FOUND: register again
  Heartbeater heart(o, &job);
  ASSERT_TRUE(job.WaitForStopTraining(absl::Seconds(60)));
  EXPECT_TRUE(job.lost());
}

TEST_F(HeartbeaterTest, StopWakesItMidIntervalAtOnce) {
  LeaseAJob();
  JobControl job(lease_);
  Heartbeater heart(Options(absl::Hours(1)), &job);
  absl::Notification stopped;
  std::thread stopper([&] {
    heart.Stop();
    stopped.Notify();
  });
  // An hour's interval: returning at all means it was woken.
  EXPECT_TRUE(stopped.WaitForNotificationWithTimeout(absl::Seconds(60)));
  stopper.join();
  EXPECT_EQ(heart.answered(), 0);
}

// A coordinator that takes heartbeats and never answers, until the caller
// gives up on the call.
class FrozenCoordinator : public v1::WorkerService::Service {
 public:
  grpc::Status Heartbeat(grpc::ServerContext* ctx, const v1::HeartbeatRequest*,
                         v1::HeartbeatResponse*) override {
    if (!entered_.HasBeenNotified()) entered_.Notify();
    while (!ctx->IsCancelled()) absl::SleepFor(absl::Milliseconds(5));
    if (!cancelled_.HasBeenNotified()) cancelled_.Notify();
    return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
  }
  absl::Notification entered_;
  absl::Notification cancelled_;
};

TEST(HeartbeaterFrozenTest, TheStopSignalCancelsACallInFlight) {
  FrozenCoordinator frozen;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&frozen);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(port, 0);
  auto stub = v1::WorkerService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  StopSignal stop;
  v1::Lease lease;
  lease.set_job_id(1);
  JobControl job(lease);
  Heartbeater::Options o;
  o.stub = stub.get();
  o.worker_id = 1;
  o.interval = absl::Milliseconds(1);
  o.call_timeout = absl::Hours(1);  // only the stop can end the call
  o.stop = &stop;
  Heartbeater heart(o, &job);
  ASSERT_TRUE(
      frozen.entered_.WaitForNotificationWithTimeout(absl::Seconds(60)));
  stop.Stop();
  EXPECT_TRUE(
      frozen.cancelled_.WaitForNotificationWithTimeout(absl::Seconds(60)));
  heart.Stop();
  // A stopped worker hands its job back: the heartbeater decides nothing.
  EXPECT_FALSE(job.lost());
  EXPECT_FALSE(job.cancelled());
  server->Shutdown();
}

}  // namespace
}  // namespace mixcal::worker
