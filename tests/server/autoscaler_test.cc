// The launcher's decisions against a real store, with a fake engine; and the
// Slurm engine's own parsing against stand-in sbatch/squeue/scancel scripts.
// tests/deploy/slurm_array_test.sh runs the real Slurm.

#include "server/autoscaler.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "tests/scratch_dir.h"

namespace mixcal::server {
namespace {

namespace fs = std::filesystem;

class FakeLauncher : public Launcher {
 public:
  std::string engine() const override { return "fake"; }
  absl::StatusOr<std::string> Submit(const std::string& device_class,
                                     int tasks) override {
    ++attempts;
    if (refuse) return absl::InvalidArgumentError("sbatch: invalid partition");
    const std::string id = std::to_string(next_id_++);
    submitted.push_back(tasks);
    tasks_[id] = TaskCounts{tasks, 0, 0, ""};
    EXPECT_EQ(device_class, "cuda");
    return id;
  }
  absl::StatusOr<std::map<std::string, TaskCounts>> Query(
      const std::vector<std::string>& ids) override {
    std::map<std::string, TaskCounts> out;
    for (const std::string& id : ids)
      if (auto it = tasks_.find(id); it != tasks_.end()) out[id] = it->second;
    return out;
  }
  absl::Status CancelPending(const std::string& id) override {
    cancelled.push_back(id);
    tasks_[id].pending = 0;
    return absl::OkStatus();
  }
  std::string WorkerPlacement(const std::string& id) const override {
    return "fake job " + id;
  }
  LaunchEnd DescribeEnd(const std::string& id) override {
    LaunchEnd end;
    end.summary = "2 task(s) FAILED (reason NonZeroExitCode) job " + id;
    end.cancelled = ends_cancelled;
    return end;
  }
  // The scheduler starts n pending tasks of id.
  void Start(const std::string& id, int n) {
    tasks_[id].pending -= n;
    tasks_[id].running += n;
  }
  void Forget(const std::string& id) { tasks_.erase(id); }
  // Every task of id has exited and is completing (Slurm's CG): still listed.
  void Complete(const std::string& id) {
    TaskCounts& c = tasks_[id];
    c.ending += c.pending + c.running;
    c.pending = c.running = 0;
  }

  std::vector<int> submitted;
  std::vector<std::string> cancelled;
  bool ends_cancelled = false;
  bool refuse = false;  // Submit fails
  int attempts = 0;
  std::map<std::string, TaskCounts> tasks_;
  int next_id_ = 100;
};

class AutoscalerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::mixcal::testing::FreshTestDir("autoscale");
    storage::StoreOptions o;
    o.path = (dir_ / "mixcal.db").string();
    o.clock = &clock_;
    store_ = *storage::Store::Open(o);
    clock_.AdvanceMicros(1'000'000'000);
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }
  int64_t SubmitCudaJobs(int n) {
    v1::SweepSpec s;
    s.set_name("gpu");
    s.mutable_data()->set_dataset("synthetic");
    s.set_model("mlp");
    s.add_methods()->set_name("baseline");
    for (int i = 0; i < n; ++i) s.add_seeds(i);
    s.set_device("cuda");
    return store_->sweeps().CreateSweep(s)->id();
  }
  // A worker of a launch's task registers ("fake job 100_0").
  int64_t RegisterFrom(const std::string& id, int task) {
    v1::WorkerInfo w;
    w.set_host("node" + std::to_string(task));
    w.set_device("cuda:0");
    w.set_placement("fake job " + id + "_" + std::to_string(task) + ", gpu 0");
    absl::StatusOr<int64_t> worker = store_->queue().RegisterWorker(w);
    EXPECT_TRUE(worker.ok()) << worker.status();
    return worker.value_or(0);
  }
  std::vector<std::string> LauncherEventKinds() {
    std::vector<std::string> kinds;
    absl::StatusOr<std::vector<v1::Event>> events =
        store_->launches().LauncherEvents(100);
    EXPECT_TRUE(events.ok()) << events.status();
    for (const v1::Event& e : events.value_or(std::vector<v1::Event>{}))
      kinds.push_back(e.kind());
    return kinds;
  }
  // Ticks every 5 s (the default period): back-offs of 10, 20, 40 s.
  std::unique_ptr<Autoscaler> Scaler(Launcher* l, int max_workers,
                                     int max_failures = 5) {
    AutoscalerOptions o;
    o.device_class = "cuda";
    o.max_workers = max_workers;
    o.max_failures = max_failures;
    return std::make_unique<Autoscaler>(store_.get(), l, &clock_, o);
  }

  fs::path dir_;
  ManualClock clock_;
  std::unique_ptr<storage::Store> store_;
};

TEST_F(AutoscalerTest, SubmitsForUncoveredJobsUpToTheMaximumAndNoMore) {
  SubmitCudaJobs(5);
  FakeLauncher fake;
  auto scaler = Scaler(&fake, 3);
  ASSERT_TRUE(scaler->Tick().ok());
  EXPECT_EQ(fake.submitted, std::vector<int>{3});
  ASSERT_TRUE(scaler->Tick().ok());  // 3 pending: at the maximum
  EXPECT_EQ(fake.submitted, std::vector<int>{3});
  // They start and register as idle cuda workers: still no more.
  fake.Start("100", 3);
  for (int i = 0; i < 3; ++i) {
    v1::WorkerInfo w;
    w.set_host("node");
    w.set_device("cuda:0");
    ASSERT_TRUE(store_->queue().RegisterWorker(w).ok());
  }
  ASSERT_TRUE(scaler->Tick().ok());
  EXPECT_EQ(fake.submitted, std::vector<int>{3});
  EXPECT_TRUE(fake.cancelled.empty());
}

TEST_F(AutoscalerTest, NeverMorePendingTasksThanQueuedJobs) {
  SubmitCudaJobs(2);
  FakeLauncher fake;
  auto scaler = Scaler(&fake, 50);
  ASSERT_TRUE(scaler->Tick().ok());
  ASSERT_TRUE(scaler->Tick().ok());
  EXPECT_EQ(fake.submitted, std::vector<int>{2});
  // An idle worker of another class does not count; one of this class does.
  v1::WorkerInfo cpu;
  cpu.set_host("h");
  cpu.set_device("cpu");
  ASSERT_TRUE(store_->queue().RegisterWorker(cpu).ok());
  SubmitCudaJobs(1);
  ASSERT_TRUE(scaler->Tick().ok());
  EXPECT_EQ(fake.submitted, (std::vector<int>{2, 1}));
}

TEST_F(AutoscalerTest, AnEmptyQueueCancelsPendingTasks) {
  const int64_t sweep = SubmitCudaJobs(4);
  FakeLauncher fake;
  auto scaler = Scaler(&fake, 4);
  ASSERT_TRUE(scaler->Tick().ok());
  fake.Start("100", 1);
  ASSERT_TRUE(store_->sweeps().CancelSweep(sweep).ok());
  ASSERT_TRUE(scaler->Tick().ok());
  EXPECT_EQ(fake.cancelled, std::vector<std::string>{"100"});
  EXPECT_EQ(fake.submitted, std::vector<int>{4});
}

TEST_F(AutoscalerTest, AfterARestartItReconcilesInsteadOfSubmittingAgain) {
  SubmitCudaJobs(3);
  FakeLauncher fake;
  ASSERT_TRUE(Scaler(&fake, 8)->Tick().ok());
  ASSERT_EQ(fake.submitted, std::vector<int>{3});
  // A new coordinator process: a new autoscaler on the same store, the
  // scheduler still holding the 3 pending tasks.
  FakeLauncher same_scheduler = fake;
  same_scheduler.submitted.clear();
  ASSERT_TRUE(Scaler(&same_scheduler, 8)->Tick().ok());
  EXPECT_TRUE(same_scheduler.submitted.empty());
  // Had the scheduler forgotten them (all ended), it would submit anew and
  // mark the old launch ended.
  // (No worker registered from it: a failed launch, so after the first
  // back-off of 2 periods.)
  same_scheduler.Forget("100");
  auto restarted = Scaler(&same_scheduler, 8);
  ASSERT_TRUE(restarted->Tick().ok());
  EXPECT_TRUE(same_scheduler.submitted.empty());
  clock_.AdvanceMicros(10'000'000);
  ASSERT_TRUE(restarted->Tick().ok());
  EXPECT_EQ(same_scheduler.submitted, std::vector<int>{3});
  auto active = store_->launches().ActiveLaunches("fake");
  ASSERT_TRUE(active.ok());
  ASSERT_EQ(active->size(), 1u);
  EXPECT_EQ((*active)[0].scheduler_id, "101");
}

TEST_F(AutoscalerTest, TasksRunningButNotYetRegisteredAreNotCoveredAgain) {
  SubmitCudaJobs(2);
  FakeLauncher fake;
  auto scaler = Scaler(&fake, 8);
  ASSERT_TRUE(scaler->Tick().ok());
  // Both tasks start; their workers take a while (CUDA, an environment).
  fake.Start("100", 2);
  for (int i = 0; i < 5; ++i) {
    clock_.AdvanceMicros(5'000'000);
    ASSERT_TRUE(scaler->Tick().ok());
  }
  EXPECT_EQ(fake.submitted, std::vector<int>{2});
  // One registers and takes a job: one queued, one task starting, nothing new.
  const int64_t worker = RegisterFrom("100", 0);
  auto job = store_->queue().AcquireJob(worker, 60'000'000);
  ASSERT_TRUE(job.ok() && job->has_value());
  ASSERT_TRUE(scaler->Tick().ok());
  EXPECT_EQ(fake.submitted, std::vector<int>{2});
}

TEST_F(AutoscalerTest, FailedLaunchesBackOffAndStopAfterTheBound) {
  SubmitCudaJobs(2);
  FakeLauncher fake;
  auto scaler = Scaler(&fake, 4, /*max_failures=*/3);
  ASSERT_TRUE(scaler->Tick().ok());
  ASSERT_EQ(fake.submitted, std::vector<int>{2});
  // Every task fails at once, no worker registered: 10 s before the next.
  fake.Forget("100");
  ASSERT_TRUE(scaler->Tick().ok());
  EXPECT_EQ(fake.submitted, std::vector<int>{2});
  clock_.AdvanceMicros(9'000'000);
  ASSERT_TRUE(scaler->Tick().ok());
  EXPECT_EQ(fake.submitted, std::vector<int>{2});
  clock_.AdvanceMicros(1'000'000);
  ASSERT_TRUE(scaler->Tick().ok());
  EXPECT_EQ(fake.submitted, (std::vector<int>{2, 2}));
  // It fails again: 20 s now.
  fake.Forget("101");
  ASSERT_TRUE(scaler->Tick().ok());
  clock_.AdvanceMicros(19'000'000);
  ASSERT_TRUE(scaler->Tick().ok());
  EXPECT_EQ(fake.submitted.size(), 2u);
  clock_.AdvanceMicros(1'000'000);
  ASSERT_TRUE(scaler->Tick().ok());
  EXPECT_EQ(fake.submitted.size(), 3u);
  // The third failure in a row stops it, whatever the wait.
  fake.Forget("102");
  ASSERT_TRUE(scaler->Tick().ok());
  clock_.AdvanceMicros(3'600'000'000);
  ASSERT_TRUE(scaler->Tick().ok());
  EXPECT_EQ(fake.submitted.size(), 3u);
  EXPECT_EQ(LauncherEventKinds(),
            (std::vector<std::string>{"launched", "launch_failed", "launched",
                                      "launch_failed", "launched",
                                      "launch_failed", "launcher_stopped"}));
  const std::vector<v1::Event> events = *store_->launches().LauncherEvents(100);
  EXPECT_NE(events[1].message().find("NonZeroExitCode"), std::string::npos)
      << events[1].message();
  EXPECT_NE(events[1].message().find("next launch in 10s"), std::string::npos)
      << events[1].message();
  // Only the newest N, oldest first.
  const std::vector<v1::Event> last = *store_->launches().LauncherEvents(2);
  ASSERT_EQ(last.size(), 2u);
  EXPECT_EQ(last[1].kind(), "launcher_stopped");
}

TEST_F(AutoscalerTest, NoNewLaunchWhileAFailingOneIsStillCompleting) {
  SubmitCudaJobs(2);
  FakeLauncher fake;
  auto scaler = Scaler(&fake, 4, /*max_failures=*/2);
  ASSERT_TRUE(scaler->Tick().ok());
  ASSERT_EQ(fake.submitted, std::vector<int>{2});
  // Its tasks fail at once but Slurm lists them a while as completing:
  // not judged yet, so nothing new is submitted meanwhile.
  fake.Start("100", 2);
  fake.Complete("100");
  for (int i = 0; i < 3; ++i) {
    clock_.AdvanceMicros(5'000'000);
    ASSERT_TRUE(scaler->Tick().ok());
  }
  EXPECT_EQ(fake.submitted, std::vector<int>{2});
  // Dropped: a failure, and the back-off runs from there.
  fake.Forget("100");
  ASSERT_TRUE(scaler->Tick().ok());
  EXPECT_EQ(fake.submitted, std::vector<int>{2});
  clock_.AdvanceMicros(10'000'000);
  ASSERT_TRUE(scaler->Tick().ok());
  ASSERT_EQ(fake.submitted, (std::vector<int>{2, 2}));
  // The second launch fails the same way: the bound stops the launcher with
  // exactly two launches, however long the tasks take to leave the list.
  fake.Start("101", 2);
  fake.Complete("101");
  clock_.AdvanceMicros(60'000'000);
  ASSERT_TRUE(scaler->Tick().ok());
  fake.Forget("101");
  clock_.AdvanceMicros(60'000'000);
  ASSERT_TRUE(scaler->Tick().ok());
  clock_.AdvanceMicros(60'000'000);
  ASSERT_TRUE(scaler->Tick().ok());
  EXPECT_EQ(fake.submitted.size(), 2u);
  EXPECT_EQ(LauncherEventKinds(),
            (std::vector<std::string>{"launched", "launch_failed", "launched",
                                      "launch_failed", "launcher_stopped"}));
}

TEST_F(AutoscalerTest, ALaunchWhoseWorkerRegisteredOrThatWasCancelledIsNoFailure) {
  SubmitCudaJobs(2);
  FakeLauncher fake;
  auto scaler = Scaler(&fake, 8);
  ASSERT_TRUE(scaler->Tick().ok());
  fake.Start("100", 2);
  RegisterFrom("100", 1);
  fake.Forget("100");  // ended after its worker ran
  ASSERT_TRUE(scaler->Tick().ok());
  // The one worker is idle: one more task, at once (no back-off).
  EXPECT_EQ(fake.submitted, (std::vector<int>{2, 1}));
  fake.ends_cancelled = true;  // an admin scancel'ed it
  fake.Forget("101");
  ASSERT_TRUE(scaler->Tick().ok());
  EXPECT_EQ(fake.submitted, (std::vector<int>{2, 1, 1}));
  for (const std::string& kind : LauncherEventKinds())
    EXPECT_EQ(kind, "launched");
}

TEST_F(AutoscalerTest, ASubmissionTheSchedulerRefusesBacksOffToo) {
  SubmitCudaJobs(1);
  FakeLauncher fake;
  fake.refuse = true;
  auto scaler = Scaler(&fake, 8);
  ASSERT_TRUE(scaler->Tick().ok());
  ASSERT_TRUE(scaler->Tick().ok());
  clock_.AdvanceMicros(5'000'000);
  ASSERT_TRUE(scaler->Tick().ok());
  EXPECT_EQ(fake.attempts, 1);  // the next try after 10 s
  clock_.AdvanceMicros(5'000'000);
  ASSERT_TRUE(scaler->Tick().ok());
  EXPECT_EQ(fake.attempts, 2);
  const std::vector<v1::Event> events = *store_->launches().LauncherEvents(10);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_NE(events[0].message().find("invalid partition"), std::string::npos)
      << events[0].message();
}

void Script(const fs::path& path, const std::string& body) {
  std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
  chmod(path.c_str(), 0755);
}

TEST(SlurmLauncherTest, SpeaksSbatchSqueueAndScancel) {
  const fs::path bin = fs::temp_directory_path() /
                       ("mixcal_fake_slurm_" + std::to_string(getpid()));
  fs::create_directories(bin);
  const fs::path args = bin / "args";
  Script(bin / "sbatch", "echo \"$@ MIXCAL_ADDRESS=$MIXCAL_ADDRESS\" > " +
                             args.string() + "; echo '4242;cluster'");
  Script(bin / "squeue",
         "echo '4242 PD Resources'; echo '4242 PD Resources'; "
         "echo '4242 R None'; echo '4242 CG None'; echo '99 R None'");
  Script(bin / "scontrol",
         "echo \"$@\" > " + (bin / "scontrol_args").string() +
             "; echo 'JobId=4243 ArrayJobId=4242 ArrayTaskId=0 "
             "JobState=FAILED Reason=NonZeroExitCode ExitCode=1:0 "
             "StdOut=/logs/mixcal-worker-4242_0.out'; "
             "echo 'JobId=4244 ArrayJobId=4242 ArrayTaskId=1 "
             "JobState=FAILED Reason=NonZeroExitCode ExitCode=1:0 "
             "StdOut=/logs/mixcal-worker-4242_1.out'");
  Script(bin / "scancel", "echo \"$@\" > " + args.string());
  SlurmLauncherOptions o;
  o.script = "/opt/mixcal-worker.sbatch";
  o.partition = "gpu";
  o.gres = "gpu:1";
  o.time_limit = "4:00:00";
  o.extra_args = {"--qos=low"};
  o.log_dir = "/logs";
  o.cpus_per_task = 2;
  o.env["MIXCAL_ADDRESS"] = "head:7707";
  o.bin_dir = bin.string();
  auto slurm = NewSlurmLauncher(o);
  absl::StatusOr<std::string> id = slurm->Submit("cuda", 3);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, "4242");
  std::string line;
  std::getline(std::ifstream(args), line);
  EXPECT_EQ(line,
            "--parsable --array=0-2 --job-name=mixcal-worker --partition=gpu "
            "--gres=gpu:1 --time=4:00:00 --cpus-per-task=2 "
            "--output=/logs/mixcal-worker-%A_%a.out --qos=low "
            "/opt/mixcal-worker.sbatch "
            "MIXCAL_ADDRESS=head:7707");
  // CPU workers ask for no GPU, whatever the script's #SBATCH --gres says.
  ASSERT_TRUE(slurm->Submit("cpu", 1).ok());
  std::getline(std::ifstream(args), line);
  EXPECT_NE(line.find(" --gres=none "), std::string::npos) << line;
  EXPECT_EQ(line.find("gpu:1"), std::string::npos) << line;
  auto counts = slurm->Query({"4242", "7"});
  ASSERT_TRUE(counts.ok()) << counts.status();
  ASSERT_EQ(counts->size(), 1u);  // 7 is not listed: ended; 99 not ours
  EXPECT_EQ((*counts)["4242"].pending, 2);
  EXPECT_EQ((*counts)["4242"].running, 1);
  EXPECT_EQ((*counts)["4242"].ending, 1);  // CG: completing
  EXPECT_EQ((*counts)["4242"].pending_reason, "Resources");
  const LaunchEnd end = slurm->DescribeEnd("4242");
  EXPECT_EQ(end.summary,
            "2 task(s) FAILED (reason NonZeroExitCode, exit code 1:0); output "
            "/logs/mixcal-worker-4242_0.out");
  EXPECT_FALSE(end.cancelled);
  EXPECT_EQ(slurm->WorkerPlacement("4242"), "slurm job 4242");
  ASSERT_TRUE(slurm->CancelPending("4242").ok());
  std::getline(std::ifstream(args), line);
  EXPECT_EQ(line, "--state=PENDING 4242");
  // A failing command's error says which, with its stderr.
  Script(bin / "sbatch", "echo 'sbatch: error: invalid partition' >&2; exit 1");
  id = slurm->Submit("cuda", 1);
  ASSERT_FALSE(id.ok());
  EXPECT_NE(id.status().message().find("invalid partition"), std::string::npos)
      << id.status();
  fs::remove_all(bin);
}

}  // namespace
}  // namespace mixcal::server
