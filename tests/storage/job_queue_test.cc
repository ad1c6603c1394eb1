// JobQueue: workers, leasing the next job (device, priority, fair turns),
// heartbeats, lease expiry and the grace after a restart.

#include <string>
#include <vector>

#include "tests/storage/store_fixture.h"

namespace mixcal::storage {
namespace {

class JobQueueTest : public StoreTest {};

TEST_F(JobQueueTest, ALeavingWorkerIsShownWithItsReasonUntilItIsBack) {
  v1::WorkerInfo self;
  self.set_host("host-a");
  self.set_device("cpu");
  std::string key;
  absl::StatusOr<int64_t> registered =
      store_->queue().RegisterWorker(self, &key);
  ASSERT_TRUE(registered.ok()) << registered.status();
  const int64_t w = *registered;
  EXPECT_EQ(key.size(), 32u);
  // Another caller with a worker token, without the worker's key: refused,
  // and the worker stays in rotation.
  absl::Status other = store_->queue().LeaveRotation(w, true, "hijack", "");
  EXPECT_TRUE(absl::IsPermissionDenied(other)) << other;
  other = store_->queue().LeaveRotation(w, true, "hijack",
                                        std::string(32, '0'));
  EXPECT_TRUE(absl::IsPermissionDenied(other)) << other;
  EXPECT_EQ(store_->queue().ListWorkers()->at(0).state(), v1::WORKER_ACTIVE);
  ASSERT_TRUE(store_->queue()
                  .LeaveRotation(w, true, "checkpoint_dir /x: read-only", key)
                  .ok());
  v1::WorkerInfo info = store_->queue().ListWorkers()->at(0);
  EXPECT_EQ(info.state(), v1::WORKER_OUT_OF_ROTATION);
  EXPECT_EQ(info.state_reason(), "checkpoint_dir /x: read-only");
  ASSERT_TRUE(
      store_->queue().LeaveRotation(w, false, "stopped by a signal", key).ok());
  EXPECT_EQ(store_->queue().ListWorkers()->at(0).state(), v1::WORKER_STOPPED);
  // A long poll that raced with its leaving does not bring it back.
  ASSERT_TRUE(store_->queue().NoteIdle(w).ok());
  EXPECT_EQ(store_->queue().ListWorkers()->at(0).state(), v1::WORKER_STOPPED);
  // Unknown workers and bad reasons change nothing.
  EXPECT_TRUE(
      absl::IsNotFound(store_->queue().LeaveRotation(w + 1, true, "x", key)));
  absl::Status bad =
      store_->queue().LeaveRotation(w, true, "cut \xE2\x82", key);
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

TEST_F(JobQueueTest, ExpiredLeaseRequeuesWithNextAttemptAndFailsAfterMax) {
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
  ASSERT_EQ(store_->queue().Heartbeat(w, {a1.lease}, kLease)->extended.size(),
            1u);
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

TEST_F(JobQueueTest, AfterARestartRunningLeasesGetAGracePeriod) {
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

TEST_F(JobQueueTest, FairTurnsBetweenSweepsOfEqualPriority) {
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

TEST_F(JobQueueTest, PriorityThenAgeWithinASweep) {
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

TEST_F(JobQueueTest, DeviceClassMatches) {
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

}  // namespace
}  // namespace mixcal::storage
