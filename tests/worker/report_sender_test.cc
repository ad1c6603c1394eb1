// The report sender against a coordinator in this process: the order of
// reports, what stale acks mean, and how it waits for an unreachable
// coordinator and for the drain after a stop (on a ManualClock).

#include "worker/report_sender.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "base/clock.h"
#include "tests/worker/worker_fixture.h"
#include "worker/reports.h"

namespace mixcal::worker {
namespace {

v1::WorkerReport Epoch(int epoch, const v1::Lease& lease) {
  core::EpochReport r;
  r.epoch = epoch;
  r.train_loss = 1.0 / epoch;
  core::SplitMetrics m;
  m.split = "test";
  m.count = 100;
  m.values.Set("accuracy", 0.5);
  m.bins.resize(15);
  m.bins.back().count = 100;
  m.bins.back().confidence_sum = 99.0;
  m.bins.back().correct = 50;
  r.splits.push_back(m);
  return EpochReport(r, lease);
}

v1::WorkerReport Finish(v1::JobState outcome, const v1::Lease& lease) {
  v1::WorkerReport r;
  *r.mutable_finish()->mutable_lease() = lease;
  r.mutable_finish()->set_outcome(outcome);
  return r;
}

// A local address where nothing listens: bound, never listening, so that
// connecting is refused at once and no other test takes the port.
class RefusingPort {
 public:
  RefusingPort() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~RefusingPort() { close(fd_); }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// A coordinator's StreamReports that acknowledges slowly, one report every
// 20 ms, and records the most reports it held unacknowledged at once.
class SlowAcks final : public v1::WorkerService::Service {
 public:
  grpc::Status StreamReports(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<v1::ReportAcks, v1::WorkerReport>* stream)
      override {
    std::thread reader([&] {
      v1::WorkerReport r;
      while (stream->Read(&r)) {
        absl::MutexLock lock(&mu_);
        unacked_.push_back(r.sequence());
        most_ = std::max(most_, unacked_.size());
      }
      absl::MutexLock lock(&mu_);
      read_all_ = true;
    });
    while (true) {
      absl::SleepFor(absl::Milliseconds(20));
      v1::ReportAcks acks;
      {
        absl::MutexLock lock(&mu_);
        auto some = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return !unacked_.empty() || read_all_;
        };
        mu_.Await(absl::Condition(&some));
        if (unacked_.empty()) break;
        acks.add_acks()->set_sequence(unacked_.front());
        unacked_.pop_front();
      }
      stream->Write(acks);
    }
    reader.join();
    return grpc::Status::OK;
  }

  size_t most() {
    absl::MutexLock lock(&mu_);
    return most_;
  }

 private:
  absl::Mutex mu_;
  std::deque<uint64_t> unacked_ ABSL_GUARDED_BY(mu_);
  size_t most_ ABSL_GUARDED_BY(mu_) = 0;
  bool read_all_ ABSL_GUARDED_BY(mu_) = false;
};

class ReportSenderTest : public WorkerFixture {
 protected:
  ReportSender::Options Options(v1::WorkerService::Stub* stub) {
    ReportSender::Options o;
    o.stub = stub;
    o.address = address_;
    o.stop = &stop_;
    o.clock = &clock_;
    return o;
  }
  StopSignal stop_;
  ManualClock clock_;
};

TEST_F(ReportSenderTest, SendsReportsInOrderAndEndsOnceTheFinishIsStored) {
  LeaseAJob();
  JobControl job(lease_);
  ReportSender sender(Options(workers_.get()), &job);
  for (int e = 1; e <= 3; ++e) sender.Push(Epoch(e, lease_));
  // Pushed right after the last epoch, without waiting for its ack: the
  // store takes it after the epochs, or it would refuse them as stale.
  sender.Push(Finish(v1::SUCCEEDED, lease_));
  sender.Close();
  sender.Wait();
  EXPECT_EQ(sender.unacknowledged(), 0u);
  EXPECT_EQ(Job().state(), v1::SUCCEEDED);
  EXPECT_EQ(Job().last_epoch(), 3u);
  EXPECT_EQ(Rows(), 3);
  EXPECT_FALSE(job.cancel_flag()->load());
}

TEST_F(ReportSenderTest, AStaleLeaseMarksTheJobLostAndEndsTheSender) {
  LeaseAJob();
  v1::Lease stale = lease_;
  stale.set_attempt(lease_.attempt() + 1);  // not the attempt that runs
  JobControl job(stale);
  ReportSender sender(Options(workers_.get()), &job);
  sender.Push(Epoch(1, stale));
  ASSERT_TRUE(job.WaitForStopTraining(absl::Seconds(60)));
  EXPECT_TRUE(job.lost());
  sender.Close();
  sender.Wait();
  EXPECT_EQ(sender.unacknowledged(), 1u);  // dropped with the lease
  EXPECT_EQ(Rows(), 0);
}

TEST_F(ReportSenderTest, ACancelledJobStopsTrainingAndItsFinishStillGoes) {
  LeaseAJob();
  CancelJob();
  JobControl job(lease_);
  ReportSender sender(Options(workers_.get()), &job);
  sender.Push(Epoch(1, lease_));
  ASSERT_TRUE(job.WaitForStopTraining(absl::Seconds(60)));
  EXPECT_TRUE(job.cancelled());
  EXPECT_FALSE(job.lost());
  sender.Push(Finish(v1::CANCELLED, lease_));
  sender.Close();
  sender.Wait();
  EXPECT_EQ(sender.unacknowledged(), 0u);
  EXPECT_EQ(Job().state(), v1::CANCELLED);
}

TEST_F(ReportSenderTest, KeepsTheQueueWhileTheCoordinatorIsAwayAndResendsIt) {
  LeaseAJob();
  const int port = coordinator_->port();
  coordinator_.reset();
  JobControl job(lease_);
  ReportSender::Options o = Options(workers_.get());
  o.retry_max = absl::Milliseconds(100);
  ReportSender sender(o, &job);
  for (int e = 1; e <= 3; ++e) sender.Push(Epoch(e, lease_));
  sender.Push(Finish(v1::SUCCEEDED, lease_));
  sender.Close();
  absl::SleepFor(absl::Milliseconds(300));  // a few refused streams
  EXPECT_EQ(sender.unacknowledged(), 4u);
  server::CoordinatorOptions back;
  back.listen = "127.0.0.1:" + std::to_string(port);
  back.db_path = (dir_ / "mixcal.db").string();
  back.lease_ms = 30000;
  auto c = server::Coordinator::Start(back);
  ASSERT_TRUE(c.ok()) << c.status();
  coordinator_ = std::move(*c);
  sender.Wait();
  EXPECT_EQ(sender.unacknowledged(), 0u);
  EXPECT_EQ(Job().state(), v1::SUCCEEDED);
  EXPECT_EQ(Rows(), 3);
}

TEST_F(ReportSenderTest, TheStopCutsABackoffShortAndTheDrainEndsOnTheClock) {
  RefusingPort nowhere;
  auto stub = v1::WorkerService::NewStub(grpc::CreateChannel(
      nowhere.address(), grpc::InsecureChannelCredentials()));
  v1::Lease lease;
  lease.set_job_id(1);
  JobControl job(lease);
  ReportSender::Options o = Options(stub.get());
  o.retry_first = absl::Hours(1);  // only the stop ends the wait
  o.retry_max = absl::Hours(1);
  o.stop_drain = absl::Hours(1);  // ends in time only on the clock
  ReportSender sender(o, &job);
  sender.Push(Epoch(1, lease));
  absl::Notification ended;
  std::thread waiter([&] {
    sender.Wait();
    ended.Notify();
  });
  absl::SleepFor(absl::Milliseconds(200));  // the stream is refused: backoff
  stop_.Stop();
  // Woken from the hour's backoff, it retries for the drain time, which the
  // clock has not seen pass.
  EXPECT_FALSE(ended.WaitForNotificationWithTimeout(absl::Milliseconds(500)));
  clock_.AdvanceSeconds(3600);
  EXPECT_TRUE(ended.WaitForNotificationWithTimeout(absl::Seconds(60)));
  waiter.join();
  EXPECT_EQ(sender.unacknowledged(), 1u);
  EXPECT_FALSE(job.lost());
}

TEST_F(ReportSenderTest, KeepsAtMostMaxInFlightUnacknowledged) {
  SlowAcks service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(port, 0);
  auto stub = v1::WorkerService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  v1::Lease lease;
  lease.set_job_id(1);
  JobControl job(lease);
  ReportSender::Options o = Options(stub.get());
  o.max_in_flight = 3;
  ReportSender sender(o, &job);
  // All pushed at once: only the window holds them back.
  for (int e = 1; e <= 10; ++e) sender.Push(Epoch(e, lease));
  sender.Push(Finish(v1::SUCCEEDED, lease));
  sender.Close();
  sender.Wait();
  EXPECT_EQ(sender.unacknowledged(), 0u);
  EXPECT_EQ(service.most(), 3u);
  server->Shutdown();
}

}  // namespace
}  // namespace mixcal::worker
