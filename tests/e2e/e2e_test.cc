// Real coordinator and worker processes on 127.0.0.1, real SQLite, real
// LibTorch training on tiny synthetic data.

#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <cstdio>
#include <map>
#include <set>
#include <thread>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/e2e/harness.h"

namespace mixcal::testing {
namespace {

int64_t Submit(Cluster& c, const v1::SweepSpec& spec) {
  grpc::ClientContext ctx;
  v1::SubmitSweepRequest req;
  *req.mutable_spec() = spec;
  v1::Sweep sweep;
  grpc::Status s = c.api().SubmitSweep(&ctx, req, &sweep);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return sweep.id();
}

bool Ended(const v1::Sweep& s) {
  return s.state() == v1::SWEEP_SUCCEEDED || s.state() == v1::SWEEP_FAILED ||
         s.state() == v1::SWEEP_CANCELLED;
}

// Every (job, epoch) of `split` appears exactly once, epochs 1..epochs.
void ExpectEveryEpochOnce(const std::vector<v1::EpochMetrics>& rows,
                          const v1::Sweep& sweep, int epochs) {
  std::map<int64_t, std::multiset<uint32_t>> seen;
  for (const auto& r : rows) seen[r.job_id()].insert(r.epoch());
  ASSERT_EQ(seen.size(), static_cast<size_t>(sweep.job_ids_size()));
  for (int64_t job : sweep.job_ids()) {
    std::multiset<uint32_t> expected;
    for (int e = 1; e <= epochs; ++e) expected.insert(e);
    EXPECT_EQ(seen[job], expected) << "job " << job;
  }
}

TEST(EndToEndTest, SweepRunsToCompletionOnTwoWorkers) {
  Cluster c("complete");
  ASSERT_TRUE(c.StartCoordinator());
  // Watch from before the start: the stream must carry every epoch and end.
  // Jobs long enough (seconds) that the second worker, started a moment
  // after the first, gets some.
  const int64_t id =
      Submit(c, TinySweep("complete", 3, 2, /*train_count=*/65536));
  std::vector<v1::SweepUpdate> updates;
  grpc::Status watch_status;
  std::thread watcher([&] {
    grpc::ClientContext ctx;
    v1::WatchSweepRequest req;
    req.set_sweep_id(id);
    auto reader = c.api().WatchSweep(&ctx, req);
    v1::SweepUpdate u;
    while (reader->Read(&u)) updates.push_back(u);
    watch_status = reader->Finish();
  });
  c.StartWorker();
  c.StartWorker();
  ASSERT_TRUE(WaitFor([&] { return Ended(c.GetSweep(id)); }, 180))
      << Slurp(c.WorkerLog(0));
  watcher.join();
  const v1::Sweep sweep = c.GetSweep(id);
  EXPECT_EQ(sweep.state(), v1::SWEEP_SUCCEEDED)
      << Slurp(c.WorkerLog(0)) << Slurp(c.WorkerLog(1));
  ASSERT_EQ(sweep.job_ids_size(), 4);
  std::vector<v1::EpochMetrics> test = c.Metrics(id, "test");
  ExpectEveryEpochOnce(test, sweep, 3);
  ExpectEveryEpochOnce(c.Metrics(id, "test_ts"), sweep, 3);

  // Both workers took part.
  std::set<int64_t> workers;
  for (int64_t job : sweep.job_ids()) workers.insert(c.GetJob(job).worker_id());
  EXPECT_EQ(workers.size(), 2u);

  // The summary matches the stored rows: mean of ECE at epoch 3 per method.
  grpc::ClientContext ctx;
  v1::SummarizeSweepRequest sreq;
  sreq.set_sweep_id(id);
  sreq.mutable_at()->set_final(true);
  sreq.set_split("test");
  v1::SummarizeSweepResponse summary;
  ASSERT_TRUE(c.api().SummarizeSweep(&ctx, sreq, &summary).ok());
  ASSERT_EQ(summary.rows_size(), 2);
  for (const v1::SummaryRow& row : summary.rows()) {
    double sum = 0;
    int n = 0;
    for (const auto& m : test) {
      if (m.method() == row.method() && m.epoch() == 3) {
        sum += m.ece();
        ++n;
      }
    }
    ASSERT_EQ(n, 2);
    EXPECT_EQ(row.seeds(), 2u);
    for (const auto& stat : row.stats()) {
      if (stat.metric() == "ece") {
        EXPECT_NEAR(stat.mean(), sum / n, 1e-12) << row.method();
      }
    }
  }

  // The watch stream ended with the sweep, and carried every epoch once or
  // more.
  EXPECT_TRUE(watch_status.ok()) << watch_status.error_message();
  ASSERT_FALSE(updates.empty());
  EXPECT_TRUE(updates.back().has_sweep());
  EXPECT_EQ(updates.back().sweep().state(), v1::SWEEP_SUCCEEDED);
  std::set<std::pair<int64_t, uint32_t>> streamed;
  for (const auto& u : updates)
    if (u.has_metrics() && u.metrics().split() == "test")
      streamed.insert({u.metrics().job_id(), u.metrics().epoch()});
  EXPECT_EQ(streamed.size(), 12u);
}

TEST(EndToEndTest, KilledWorkersJobFinishesElsewhereFromItsCheckpoint) {
  Cluster c("kill_worker");
  ASSERT_TRUE(c.StartCoordinator(/*lease_s=*/1.5, /*heartbeat_s=*/0.2));
  v1::SweepSpec spec = TinySweep("kill", 8, 1, /*train_count=*/16384);
  spec.clear_methods();
  spec.add_methods()->set_name("baseline");
  const int64_t id = Submit(c, spec);
  const int64_t job = c.GetSweep(id).job_ids(0);
  size_t first = c.StartWorker();
  ASSERT_TRUE(
      WaitFor([&] { return c.GetJob(job).checkpoint_epoch() >= 2; }, 120))
      << Slurp(c.WorkerLog(first));
  c.KillWorker(first);  // kill -9 mid-job
  const uint32_t reported = c.GetJob(job).last_epoch();
  ASSERT_LT(reported, 8u)
      << "the job finished before the kill; make epochs longer";
  size_t second = c.StartWorker();
  ASSERT_TRUE(WaitFor([&] { return Ended(c.GetSweep(id)); }, 180))
      << Slurp(c.WorkerLog(second));
  v1::Job done = c.GetJob(job);
  EXPECT_EQ(done.state(), v1::SUCCEEDED) << done.error();
  EXPECT_EQ(done.attempt(), 2u);
  EXPECT_NE(Slurp(c.WorkerLog(second)).find("resuming from"), std::string::npos)
      << Slurp(c.WorkerLog(second));
  ExpectEveryEpochOnce(c.Metrics(id, "test"), c.GetSweep(id), 8);
}

TEST(EndToEndTest, CoordinatorRestartMidSweepLosesNothing) {
  Cluster c("restart");
  ASSERT_TRUE(c.StartCoordinator(/*lease_s=*/5, /*heartbeat_s=*/0.25));
  const int64_t id =
      Submit(c, TinySweep("restart", 5, 1, /*train_count=*/8192));
  c.StartWorker();
  ASSERT_TRUE(WaitFor([&] { return c.Metrics(id, "test").size() >= 2; }, 120));
  c.KillCoordinator();  // kill -9
  std::this_thread::sleep_for(
      std::chrono::milliseconds(1500));  // the worker trains on
  ASSERT_TRUE(c.StartCoordinator(/*lease_s=*/5, /*heartbeat_s=*/0.25));
  ASSERT_TRUE(WaitFor([&] { return Ended(c.GetSweep(id)); }, 180))
      << Slurp(c.WorkerLog(0));
  const v1::Sweep sweep = c.GetSweep(id);
  EXPECT_EQ(sweep.state(), v1::SWEEP_SUCCEEDED) << Slurp(c.WorkerLog(0));
  ExpectEveryEpochOnce(c.Metrics(id, "test"), sweep, 5);
}

// With a lease of 2 s, a coordinator restart gives running leases one
// lease length: the worker must be back within it. Down for 3 s each time
// (its channel's back-off grows meanwhile), the worker's first heartbeat
// after each of three restarts must arrive within a second and a half, and
// the job keep its first attempt. (Its reconnect back-off once left the
// channel idle for seconds with the coordinator up, and a short lease was
// lost at most restarts.)
TEST(EndToEndTest, AWorkerIsBackWithinASecondOfACoordinatorRestart) {
  Cluster c("reconnect");
  constexpr double kLease = 2.0;
  ASSERT_TRUE(c.StartCoordinator(kLease, /*heartbeat_s=*/0.25));
  v1::SweepSpec spec = TinySweep("reconnect", 1000, 1, /*train_count=*/4096);
  spec.clear_methods();
  spec.add_methods()->set_name("baseline");
  const int64_t id = Submit(c, spec);
  const int64_t job = c.GetSweep(id).job_ids(0);
  c.StartWorker();
  ASSERT_TRUE(WaitFor([&] { return c.GetJob(job).last_epoch() >= 1; }, 120));
  auto last_heartbeat = [&] {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(2));
    v1::ListWorkersResponse resp;
    if (!c.api().ListWorkers(&ctx, v1::ListWorkersRequest(), &resp).ok())
      return int64_t{0};
    int64_t newest = 0;
    for (const v1::WorkerInfo& w : resp.workers())
      newest = std::max<int64_t>(newest, w.last_heartbeat_us());
    return newest;
  };
  for (int restart = 0; restart < 3; ++restart) {
    c.KillCoordinator();  // kill -9
    std::this_thread::sleep_for(std::chrono::seconds(3));
    ASSERT_TRUE(c.StartCoordinator(kLease, /*heartbeat_s=*/0.25));
    const auto up = std::chrono::steady_clock::now();
    const int64_t up_us = absl::ToUnixMicros(absl::Now());
    ASSERT_TRUE(WaitFor([&] { return last_heartbeat() > up_us; }, 30))
        << Slurp(c.WorkerLog(0));
    const double back_s = std::chrono::duration<double>(
                              std::chrono::steady_clock::now() - up)
                              .count();
    std::printf("restart %d: the worker's first heartbeat after %.2f s\n",
                restart + 1, back_s);
    EXPECT_LT(back_s, 1.5) << Slurp(c.WorkerLog(0));
    // Past the restart's grace: the lease held.
    std::this_thread::sleep_for(std::chrono::milliseconds(
        static_cast<int>(kLease * 1000) + 500));
    const v1::Job j = c.GetJob(job);
    EXPECT_EQ(j.state(), v1::RUNNING) << Slurp(c.CoordinatorLog());
    EXPECT_EQ(j.attempt(), 1u) << Slurp(c.WorkerLog(0));
  }
  grpc::ClientContext ctx;
  v1::CancelJobRequest req;
  req.set_job_id(job);
  v1::Job cancelled;
  EXPECT_TRUE(c.api().CancelJob(&ctx, req, &cancelled).ok());
}

TEST(EndToEndTest, CancellationStopsTheRunningJobPromptly) {
  Cluster c("cancel");
  ASSERT_TRUE(c.StartCoordinator(/*lease_s=*/2, /*heartbeat_s=*/0.1));
  v1::SweepSpec spec = TinySweep("cancel", 50, 1, /*train_count=*/16384);
  spec.clear_methods();
  spec.add_methods()->set_name("baseline");
  const int64_t id = Submit(c, spec);
  const int64_t job = c.GetSweep(id).job_ids(0);
  c.StartWorker();
  ASSERT_TRUE(WaitFor([&] { return c.GetJob(job).last_epoch() >= 1; }, 120));
  grpc::ClientContext ctx;
  v1::CancelJobRequest req;
  req.set_job_id(job);
  v1::Job cancelled;
  ASSERT_TRUE(c.api().CancelJob(&ctx, req, &cancelled).ok());
  EXPECT_EQ(cancelled.state(), v1::CANCELLED);
  // The worker hears it at its next heartbeat (0.1 s) and stops between
  // batches: it logs it well before another epoch (~0.5 s) could end.
  ASSERT_TRUE(WaitFor(
      [&] {
        return Slurp(c.WorkerLog(0)).find("cancelled; stopping") !=
               std::string::npos;
      },
      10));
  ASSERT_TRUE(WaitFor(
      [&] {
        return Slurp(c.WorkerLog(0)).find("job 1 CANCELLED") !=
               std::string::npos;
      },
      10))
      << Slurp(c.WorkerLog(0));
  const uint32_t at_cancel = cancelled.last_epoch();
  EXPECT_LE(c.GetJob(job).last_epoch(), at_cancel + 1);
  EXPECT_EQ(c.GetJob(job).state(), v1::CANCELLED);
  EXPECT_EQ(c.GetSweep(id).state(), v1::SWEEP_CANCELLED);
}

TEST(EndToEndTest, OneWorkerWithTwoSlotsRunsTwoJobsAtOnceAndStopsCleanly) {
  Cluster c("slots");
  ASSERT_TRUE(c.StartCoordinator(/*lease_s=*/3, /*heartbeat_s=*/0.25));
  const int64_t id =
      Submit(c, TinySweep("slots", 40, 1, /*train_count=*/8192));  // 2 jobs
  const size_t w = c.StartWorker({"--slots=2"});
  auto running = [&] {
    grpc::ClientContext ctx;
    v1::ListJobsRequest req;
    req.set_sweep_id(id);
    req.add_states(v1::RUNNING);
    v1::ListJobsResponse resp;
    c.api().ListJobs(&ctx, req, &resp);
    return resp.jobs_size();
  };
  ASSERT_TRUE(WaitFor([&] { return running() == 2; }, 120))
      << Slurp(c.WorkerLog(w));
  // Two registrations, one per slot, each holding its own lease.
  grpc::ClientContext ctx;
  v1::ListWorkersResponse workers;
  ASSERT_TRUE(
      c.api().ListWorkers(&ctx, v1::ListWorkersRequest(), &workers).ok());
  std::set<std::string> names;
  for (const auto& info : workers.workers()) names.insert(info.name());
  EXPECT_EQ(names, (std::set<std::string>{"w0/slot0", "w0/slot1"}));
  // SIGTERM to the one process: both jobs handed back, exit 0.
  c.KillWorkerNoWait(w, SIGTERM);
  const auto t0 = std::chrono::steady_clock::now();
  const int status = c.WaitWorker(w);
  const double took = std::chrono::duration<double>(
                          std::chrono::steady_clock::now() - t0)
                          .count();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << status << Slurp(c.WorkerLog(w));
  EXPECT_LT(took, 20.0);
  const v1::Sweep sweep = c.GetSweep(id);
  ASSERT_EQ(sweep.job_ids_size(), 2) << Slurp(c.CoordinatorLog());
  for (int64_t job : sweep.job_ids()) {
    grpc::ClientContext jctx;
    v1::GetJobRequest jreq;
    jreq.set_job_id(job);
    v1::Job j;
    grpc::Status st = c.api().GetJob(&jctx, jreq, &j);
    ASSERT_TRUE(st.ok()) << st.error_code() << " " << st.error_message();
    EXPECT_EQ(j.state(), v1::QUEUED) << Slurp(c.WorkerLog(w));
    EXPECT_EQ(j.handbacks(), 1u);
  }
}

TEST(EndToEndTest, TrainingErrorEndsTheJobFailedWithItsText) {
  Cluster c("fail");
  ASSERT_TRUE(c.StartCoordinator());
  v1::SweepSpec spec = TinySweep("fail", 2, 1);
  spec.mutable_data()->set_dataset("mnist");
  spec.mutable_data()->set_data_dir("/nonexistent/mnist-for-test");
  spec.clear_methods();
  spec.add_methods()->set_name("baseline");
  spec.set_max_attempts(1);
  const int64_t id = Submit(c, spec);
  c.StartWorker();
  ASSERT_TRUE(WaitFor([&] { return Ended(c.GetSweep(id)); }, 60))
      << Slurp(c.WorkerLog(0));
  const v1::Job job = c.GetJob(c.GetSweep(id).job_ids(0));
  EXPECT_EQ(job.state(), v1::FAILED);
  EXPECT_NE(job.error().find("/nonexistent/mnist-for-test"), std::string::npos)
      << job.error();
  EXPECT_EQ(c.GetSweep(id).state(), v1::SWEEP_FAILED);
  // RetryJob puts it back in the queue (it fails again here, as it should).
  grpc::ClientContext ctx;
  v1::RetryJobRequest req;
  req.set_job_id(job.id());
  v1::Job retried;
  ASSERT_TRUE(c.api().RetryJob(&ctx, req, &retried).ok());
  EXPECT_EQ(retried.state(), v1::QUEUED);
  ASSERT_TRUE(WaitFor(
      [&] {
        return c.GetJob(job.id()).attempt() == 2 && Ended(c.GetSweep(id));
      },
      60));
  EXPECT_EQ(c.GetJob(job.id()).state(), v1::FAILED);
}

TEST(EndToEndTest, AWorkerWhoseDeviceCannotBeUsedRefusesToStart) {
  // Nothing listens at the address: the worker must stop before it tries.
  const std::string cmd = std::string(MIXCAL_WORKER_BIN) +
                          " --device cuda:99 --coordinator 127.0.0.1:1 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = ::pclose(p);
  ASSERT_TRUE(WIFEXITED(status)) << out;
  EXPECT_EQ(WEXITSTATUS(status), 2) << out;
  EXPECT_NE(out.find("--device cuda:99 cannot be used here"), std::string::npos)
      << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
}

// A worker that never reached its coordinator before --exit_when_idle ran
// out did no work: it exits 1 saying so, so that a batch scheduler does not
// record the task as completed (a worker that worked and then idled exits
// 0).
TEST(EndToEndTest, AWorkerThatNeverReachedItsCoordinatorExitsNonZero) {
  const std::string dir = ::testing::TempDir() + "/mixcal_never_" +
                          std::to_string(::getpid());
  const std::string cmd = std::string(MIXCAL_WORKER_BIN) +
                          " --coordinator 127.0.0.1:1 --exit_when_idle 2s "
                          "--threads 1 --checkpoint_dir " + dir + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = ::pclose(p);
  ASSERT_TRUE(WIFEXITED(status)) << out;
  EXPECT_EQ(WEXITSTATUS(status), 1) << out;
  EXPECT_NE(out.find("never reached the coordinator at 127.0.0.1:1"),
            std::string::npos)
      << out;
}

// Checkpoint retention: by default a job keeps only its newest recorded
// checkpoint while it runs and none once it succeeded; --keep_checkpoints
// keeps every epoch's; --keep_checkpoints_every 2 keeps epochs 2 and 4, and
// the last, 5.
TEST(EndToEndTest, CheckpointsOfSucceededJobsAreDeletedUnlessKept) {
  enum Policy { kDrop, kKeepAll, kEverySecond };
  for (Policy policy : {kDrop, kKeepAll, kEverySecond}) {
    Cluster c(policy == kDrop      ? "ckpt_drop"
              : policy == kKeepAll ? "ckpt_keep"
                                   : "ckpt_every");
    ASSERT_TRUE(c.StartCoordinator(/*lease_s=*/5, /*heartbeat_s=*/0.25));
    v1::SweepSpec spec = TinySweep("retention", 5, 1);
    spec.set_checkpoint_every(1);
    const int64_t id = Submit(c, spec);
    if (policy == kKeepAll) {
      c.StartWorker({"--keep_checkpoints"});
    } else if (policy == kEverySecond) {
      c.StartWorker({"--keep_checkpoints_every", "2"});
    } else {
      c.StartWorker();
    }
    ASSERT_TRUE(WaitFor([&] { return Ended(c.GetSweep(id)); }, 120))
        << Slurp(c.WorkerLog(0));
    ASSERT_EQ(c.GetSweep(id).state(), v1::SWEEP_SUCCEEDED);
    c.KillWorker(0, SIGTERM);  // its last acks handled
    const v1::Sweep sweep = c.GetSweep(id);
    ASSERT_EQ(sweep.job_ids_size(), 2);
    ASSERT_TRUE(std::filesystem::exists(c.dir() / "checkpoints"));
    for (int64_t job : sweep.job_ids()) {
      const std::filesystem::path dir =
          c.dir() / "checkpoints" / ("job-" + std::to_string(job));
      if (policy == kDrop) {
        EXPECT_FALSE(std::filesystem::exists(dir)) << dir;
        continue;
      }
      for (int e = 1; e <= 5; ++e) {
        char name[64];
        std::snprintf(name, sizeof name, "checkpoint-epoch-%05d.pt", e);
        // Every second epoch, and the last (the trained model).
        const bool kept = policy == kKeepAll || e % 2 == 0 || e == 5;
        EXPECT_EQ(std::filesystem::exists(dir / name), kept) << dir / name;
      }
    }
  }
}

}  // namespace
}  // namespace mixcal::testing
