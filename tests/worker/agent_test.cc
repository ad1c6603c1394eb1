// The worker agent against a coordinator in this process (real gRPC on
// 127.0.0.1, real SQLite), with a fast fake Trainer in place of LibTorch:
// what the agent does with the protocol, not what training computes (the
// end-to-end tests run the real trainer).

#include "worker/agent.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/synchronization/notification.h"
#include "base/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "mixcal/v1/experiment.grpc.pb.h"
#include "server/coordinator.h"
#include "tests/scratch_dir.h"
#include "worker/core/device_name.h"

namespace mixcal::worker {
namespace {

namespace fs = std::filesystem;

// Reports `epochs` epochs with made-up metrics; optionally a checkpoint each
// epoch, or an error at `fail_at`.
class FakeTrainer : public core::Trainer {
 public:
  absl::Status Run(const calib::TrainConfig& config,
                   const core::TrainHooks& hooks) override {
    runs_.fetch_add(1);
    if (!config.resume_from.empty()) resumed_from_ = config.resume_from;
    const int start = config.resume_from.empty() ? 1 : resume_epoch_ + 1;
    for (int e = start; e <= config.epochs; ++e) {
      if (hooks.cancel != nullptr && hooks.cancel->load())
        return absl::CancelledError("cancelled");
      if (e == fail_at_) {
        if (fail_as_worker_fault_) return absl::UnavailableError(fail_message_);
        return absl::NotFoundError(fail_message_);
      }
      if (epoch_ms_ > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(epoch_ms_));
        if (hooks.cancel != nullptr && hooks.cancel->load())
          return absl::CancelledError("cancelled");
      }
      core::EpochReport r;
      r.epoch = e;
      r.train_loss = 1.0 / e;
      r.lr = config.lr;
      core::SplitMetrics m;
      m.split = "test";
      m.count = 100;
      m.values.Set("accuracy", 0.5 + 0.1 * e);
      m.values.Set("ece", 0.1 / e);
      m.bins.resize(config.ece_bins);
      m.bins.back().count = 100;
      m.bins.back().confidence_sum = 99.0;
      m.bins.back().correct = 60;
      r.splits.push_back(m);
      if (absl::Status s = hooks.on_epoch(r); !s.ok()) return s;
      if (checkpoints_ && hooks.on_checkpoint) {
        hooks.on_checkpoint(
            e, config.checkpoint_dir + "/epoch-" + std::to_string(e));
      }
    }
    return absl::OkStatus();
  }

  int fail_at_ = 0;
  bool fail_as_worker_fault_ = false;
  int epoch_ms_ = 0;
  std::string fail_message_ = "data_dir /no/such/dir: cannot read";
  bool checkpoints_ = false;
  int resume_epoch_ = 0;
  std::string resumed_from_;
  std::atomic<int> runs_{0};
};

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::mixcal::testing::FreshTestDir("agent");
    server::CoordinatorOptions o;
    o.listen = "127.0.0.1:0";
    o.db_path = (dir_ / "mixcal.db").string();
    o.lease_ms = 2000;
    o.heartbeat_ms = 200;
    auto c = server::Coordinator::Start(o);
    ASSERT_TRUE(c.ok()) << c.status();
    coordinator_ = std::move(*c);
    address_ = "127.0.0.1:" + std::to_string(coordinator_->port());
    api_ = v1::ExperimentService::NewStub(
        grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    coordinator_.reset();
    fs::remove_all(dir_);
  }

  int64_t Submit(int epochs, int seeds) {
    v1::SubmitSweepRequest req;
    v1::SweepSpec* s = req.mutable_spec();
    s->set_name("agent");
    s->mutable_data()->set_dataset("synthetic");
    s->set_model("mlp");
    s->mutable_training()->set_epochs(epochs);
    s->add_methods()->set_name("baseline");
    for (int i = 0; i < seeds; ++i) s->add_seeds(i);
    grpc::ClientContext ctx;
    v1::Sweep sweep;
    grpc::Status st = api_->SubmitSweep(&ctx, req, &sweep);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return sweep.id();
  }
  std::vector<v1::Job> Jobs(int64_t sweep) {
    v1::ListJobsRequest req;
    req.set_sweep_id(sweep);
    grpc::ClientContext ctx;
    v1::ListJobsResponse resp;
    EXPECT_TRUE(api_->ListJobs(&ctx, req, &resp).ok());
    return {resp.jobs().begin(), resp.jobs().end()};
  }
  int Rows(int64_t sweep) {
    v1::QueryMetricsRequest req;
    req.mutable_filter()->set_sweep_id(sweep);
    grpc::ClientContext ctx;
    v1::QueryMetricsResponse resp;
    EXPECT_TRUE(api_->QueryMetrics(&ctx, req, &resp).ok());
    return resp.rows_size();
  }
  std::vector<v1::WorkerInfo> Workers() {
    grpc::ClientContext ctx;
    v1::ListWorkersResponse resp;
    EXPECT_TRUE(api_->ListWorkers(&ctx, v1::ListWorkersRequest(), &resp).ok());
    return {resp.workers().begin(), resp.workers().end()};
  }
  AgentOptions Options(FakeTrainer* t, int max_jobs) {
    AgentOptions o;
    o.address = address_;
    o.trainer = t;
    o.max_jobs = max_jobs;
    o.checkpoint_dir = (dir_ / "ckpt").string();
    o.name = "fake";
    return o;
  }

  void WaitUntilRegistered() {
    for (int i = 0; i < 3000 && Workers().empty(); ++i)
      absl::SleepFor(absl::Milliseconds(10));
    ASSERT_FALSE(Workers().empty());
  }

  fs::path dir_;
  std::unique_ptr<server::Coordinator> coordinator_;
  std::string address_;
  std::unique_ptr<v1::ExperimentService::Stub> api_;
};

TEST_F(AgentTest, RunsJobsReportingEveryEpochAndFinishesThem) {
  const int64_t sweep = Submit(/*epochs=*/4, /*seeds=*/2);
  FakeTrainer t;
  ASSERT_TRUE(RunAgent(Options(&t, 2)).ok());
  EXPECT_EQ(t.runs_.load(), 2);
  for (const v1::Job& j : Jobs(sweep)) {
    EXPECT_EQ(j.state(), v1::SUCCEEDED) << j.id();
    EXPECT_EQ(j.last_epoch(), 4u);
    EXPECT_EQ(j.attempt(), 1u);
  }
  EXPECT_EQ(Rows(sweep), 2 * 4);
}

TEST_F(AgentTest, ATrainingErrorFailsTheJobWithItsText) {
  const int64_t sweep = Submit(3, 1);
  FakeTrainer t;
  t.fail_at_ = 2;
  ASSERT_TRUE(RunAgent(Options(&t, 1)).ok());
  std::vector<v1::Job> jobs = Jobs(sweep);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].state(), v1::FAILED);
  EXPECT_NE(jobs[0].error().find("/no/such/dir"), std::string::npos)
      << jobs[0].error();
  EXPECT_EQ(Rows(sweep), 1);  // epoch 1 was stored before the error
}

TEST_F(AgentTest,
       AnErrorLongerThanTheLimitIsCutAtACharacterAndStillEndsTheJob) {
  // A data_dir of multi-byte characters makes an error past 4,096 bytes;
  // cut mid-character it was not valid UTF-8, the finish was refused, and
  // the job stayed RUNNING.
  const int64_t sweep = Submit(2, 1);
  FakeTrainer t;
  t.fail_at_ = 1;
  t.fail_message_ = "data_dir x";  // odd, so byte 4,096 falls mid-character
  while (t.fail_message_.size() < 4200) t.fail_message_ += "\xC3\xA9";
  ASSERT_TRUE(RunAgent(Options(&t, 1)).ok());
  std::vector<v1::Job> jobs = Jobs(sweep);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].state(), v1::FAILED);
  EXPECT_LE(jobs[0].error().size(), 4096u);
  EXPECT_GT(jobs[0].error().size(), 4000u);
}

TEST_F(AgentTest, CheckpointsReachTheStoreInOrderWithTheirEpochs) {
  const int64_t sweep = Submit(3, 1);
  FakeTrainer t;
  t.checkpoints_ = true;
  ASSERT_TRUE(RunAgent(Options(&t, 1)).ok());
  std::vector<v1::Job> jobs = Jobs(sweep);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].state(), v1::SUCCEEDED);
  // Named inside the checkpoint directory.
  EXPECT_EQ(jobs[0].checkpoint(),
            "job-" + std::to_string(jobs[0].id()) + "/epoch-3");
  EXPECT_EQ(jobs[0].checkpoint_epoch(), 3u);
}

TEST_F(AgentTest, StopsWhenToldAndLeavesTheQueueAlone) {
  Submit(3, 1);
  FakeTrainer t;
  StopSignal stop;
  stop.Stop();
  AgentOptions o = Options(&t, 0);
  o.stop = &stop;
  ASSERT_TRUE(RunAgent(o).ok());
  EXPECT_EQ(t.runs_.load(), 0);
}

TEST_F(AgentTest, AnIdleWorkerLeavesPromptlyWhenStopped) {
  // No job queued: the agent sits in a 10 s long poll. Stopping it must
  // not wait that out (a batch scheduler's SIGTERM gives 30 s in all).
  FakeTrainer t;
  StopSignal stop;
  AgentOptions o = Options(&t, 0);
  o.stop = &stop;
  absl::Notification returned;
  std::thread agent([&] {
    EXPECT_TRUE(RunAgent(o).ok());
    returned.Notify();
  });
  WaitUntilRegistered();
  absl::SleepFor(absl::Milliseconds(100));  // into the long poll
  stop.Stop();
  EXPECT_TRUE(returned.WaitForNotificationWithTimeout(absl::Seconds(8)))
      << "the long poll was waited out";
  agent.join();
  std::vector<v1::WorkerInfo> workers = Workers();
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_EQ(workers[0].state(), v1::WORKER_STOPPED);
}

TEST_F(AgentTest, AnIdleWorkerLeavesAfterExitWhenIdleOnItsClockSayingWhy) {
  // A batch allocation must be released when there is no work: after the
  // idle time as the agent's clock reads it, not after a long poll's 10 s.
  const int64_t sweep = Submit(1, 1);
  FakeTrainer t;
  ManualClock clock;
  AgentOptions o = Options(&t, 0);
  o.exit_when_idle = absl::Milliseconds(700);
  o.placement = "slurm job 41_3, gpu 1";
  o.clock = &clock;
  absl::Notification returned;
  std::thread agent([&] {
    EXPECT_TRUE(RunAgent(o).ok());
    returned.Notify();
  });
  for (int i = 0; i < 3000 && Jobs(sweep)[0].state() != v1::SUCCEEDED; ++i)
    absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(Jobs(sweep)[0].state(), v1::SUCCEEDED);  // the queued job first
  // More than the idle time passes, but not on the agent's clock.
  EXPECT_FALSE(returned.WaitForNotificationWithTimeout(absl::Seconds(1)));
  clock.AdvanceMicros(700'000);
  EXPECT_TRUE(returned.WaitForNotificationWithTimeout(absl::Seconds(60)));
  agent.join();
  EXPECT_EQ(t.runs_.load(), 1);
  std::vector<v1::WorkerInfo> workers = Workers();
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_EQ(workers[0].state(), v1::WORKER_STOPPED);
  EXPECT_NE(workers[0].state_reason().find("idle for 700ms"), std::string::npos)
      << workers[0].state_reason();
  EXPECT_EQ(workers[0].placement(), "slurm job 41_3, gpu 1");
}

TEST_F(AgentTest, RegistersWithTheDevicesModelAsItsName) {
  Submit(1, 1);
  FakeTrainer t;
  ASSERT_TRUE(RunAgent(Options(&t, 1)).ok());
  std::vector<v1::WorkerInfo> workers = Workers();
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_EQ(workers[0].device(), "cpu");
  std::ifstream in("/proc/cpuinfo");
  std::ostringstream cpuinfo;
  cpuinfo << in.rdbuf();
  const std::string model = core::CpuModelName(cpuinfo.str());
  EXPECT_EQ(workers[0].device_name(), model.empty() ? "cpu" : model);
}

TEST_F(AgentTest, ACancelledJobEndsCancelledAndTheNextJobRunsUntouched) {
  // What one job heard (a person cancelled it) must not reach the next.
  const int64_t sweep = Submit(/*epochs=*/5, /*seeds=*/2);
  FakeTrainer slow;
  slow.epoch_ms_ = 200;
  absl::Notification returned;
  std::thread agent([&] {
    EXPECT_TRUE(RunAgent(Options(&slow, 2)).ok());
    returned.Notify();
  });
  int64_t first = 0;
  for (int i = 0; i < 3000 && first == 0; ++i) {
    for (const v1::Job& j : Jobs(sweep))
      if (j.state() == v1::RUNNING && j.last_epoch() > 0) first = j.id();
    if (first == 0) absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_NE(first, 0);
  {
    v1::CancelJobRequest req;
    req.set_job_id(first);
    grpc::ClientContext ctx;
    v1::Job job;
    ASSERT_TRUE(api_->CancelJob(&ctx, req, &job).ok());
  }
  agent.join();
  EXPECT_EQ(slow.runs_.load(), 2);
  for (const v1::Job& j : Jobs(sweep)) {
    if (j.id() == first) {
      EXPECT_EQ(j.state(), v1::CANCELLED);
      EXPECT_LT(j.last_epoch(), 5u);
    } else {
      EXPECT_EQ(j.state(), v1::SUCCEEDED) << j.error();
      EXPECT_EQ(j.last_epoch(), 5u);
      EXPECT_EQ(j.attempt(), 1u);
    }
  }
}

TEST_F(AgentTest, AWorkerWhoseOwnEnvironmentFailsHandsTheJobBackAndLeaves) {
  // A broken checkpoint directory fails every job on this worker: the job
  // must go to another worker, and this one must stop taking jobs.
  const int64_t sweep = Submit(2, 1);
  FakeTrainer broken;
  broken.fail_at_ = 1;
  broken.fail_as_worker_fault_ = true;
  broken.fail_message_ = "checkpoint_dir /ro/ckpt: Read-only file system";
  absl::Status s = RunAgent(Options(&broken, 0));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(s.message().find("Read-only"), std::string::npos) << s;
  std::vector<v1::Job> jobs = Jobs(sweep);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].state(), v1::QUEUED);
  EXPECT_EQ(jobs[0].handbacks(), 1u);
  EXPECT_NE(jobs[0].error().find("cannot run jobs"), std::string::npos);
  // `mixcal workers` shows it out of rotation, and why.
  std::vector<v1::WorkerInfo> workers = Workers();
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_EQ(workers[0].state(), v1::WORKER_OUT_OF_ROTATION);
  EXPECT_NE(workers[0].state_reason().find("/ro/ckpt: Read-only"),
            std::string::npos)
      << workers[0].state_reason();
  // A healthy worker then runs it; the hand-back used no attempt of its own.
  FakeTrainer healthy;
  ASSERT_TRUE(RunAgent(Options(&healthy, 1)).ok());
  jobs = Jobs(sweep);
  EXPECT_EQ(jobs[0].state(), v1::SUCCEEDED);
  EXPECT_EQ(jobs[0].attempt(), 2u);
  EXPECT_EQ(jobs[0].handbacks(), 1u);
}

TEST_F(AgentTest, AStoppedWorkerHandsItsJobBackAtOnce) {
  const int64_t sweep = Submit(50, 1);
  FakeTrainer slow;
  slow.epoch_ms_ = 100;
  StopSignal stop;
  AgentOptions o = Options(&slow, 0);
  o.stop = &stop;
  std::thread agent([&] { EXPECT_TRUE(RunAgent(o).ok()); });
  // Wait until it trains, then stop it (SIGTERM does this).
  for (int i = 0; i < 100 && Rows(sweep) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  stop.Stop();
  agent.join();
  std::vector<v1::Job> jobs = Jobs(sweep);
  ASSERT_EQ(jobs.size(), 1u);
  // Back in the queue now, not after a lease expiry (2 s here).
  EXPECT_EQ(jobs[0].state(), v1::QUEUED);
  EXPECT_EQ(jobs[0].handbacks(), 1u);
  EXPECT_NE(jobs[0].error().find("stopped"), std::string::npos);
  std::vector<v1::WorkerInfo> workers = Workers();
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_EQ(workers[0].state(), v1::WORKER_STOPPED);
  EXPECT_NE(workers[0].state_reason().find("signal"), std::string::npos)
      << workers[0].state_reason();
}

TEST_F(AgentTest, AStoppedWorkerGivesUpOnAnAbsentCoordinatorAfterTheDrain) {
  // The hand-back cannot be delivered: the worker leaves once the drain time
  // has passed on its clock (a batch scheduler kills it 30 s after SIGTERM).
  const int64_t sweep = Submit(50, 1);
  FakeTrainer slow;
  slow.epoch_ms_ = 100;
  StopSignal stop;
  ManualClock clock;
  AgentOptions o = Options(&slow, 0);
  o.stop = &stop;
  o.clock = &clock;
  o.stop_drain = absl::Hours(1);  // ends in time only on the clock
  absl::Notification returned;
  std::thread agent([&] {
    EXPECT_TRUE(RunAgent(o).ok());
    returned.Notify();
  });
  for (int i = 0; i < 3000 && Rows(sweep) == 0; ++i)
    absl::SleepFor(absl::Milliseconds(10));
  ASSERT_GT(Rows(sweep), 0);
  coordinator_.reset();
  stop.Stop();
  EXPECT_FALSE(returned.WaitForNotificationWithTimeout(absl::Seconds(1)));
  clock.AdvanceSeconds(3600);
  EXPECT_TRUE(returned.WaitForNotificationWithTimeout(absl::Seconds(60)));
  agent.join();
}

TEST_F(AgentTest, AnUnwritableCheckpointDirIsRefusedBeforeTakingJobs) {
  Submit(1, 1);
  const fs::path file = dir_ / "plain-file";
  std::ofstream(file) << "x";
  FakeTrainer t;
  AgentOptions o = Options(&t, 1);
  o.checkpoint_dir = (file / "ckpt").string();  // under a file: never writable
  absl::Status s = RunAgent(o);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(s.message().find(o.checkpoint_dir), std::string::npos) << s;
  EXPECT_EQ(t.runs_.load(), 0);
}

TEST_F(AgentTest, AnUnreadableCaFileIsAnErrorNamingIt) {
  FakeTrainer t;
  AgentOptions o = Options(&t, 1);
  o.tls_ca_file = (dir_ / "missing-ca.pem").string();
  absl::Status s = RunAgent(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("missing-ca.pem"), std::string::npos) << s;
}

}  // namespace
}  // namespace mixcal::worker
