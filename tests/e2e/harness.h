#ifndef MIXCAL_TESTS_E2E_HARNESS_H_
#define MIXCAL_TESTS_E2E_HARNESS_H_

// Real processes for the end-to-end tests: a coordinator and workers on
// 127.0.0.1, each with its own log file, killable with any signal.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "mixcal/v1/experiment.grpc.pb.h"
#include "mixcal/v1/worker.grpc.pb.h"

namespace mixcal::testing {

class Process {
 public:
  Process() = default;
  Process(const std::vector<std::string>& argv, const std::string& log) {
    pid_ = fork();
    if (pid_ == 0) {
      FILE* f = std::fopen(log.c_str(), "a");
      dup2(fileno(f), 1);
      dup2(fileno(f), 2);
      std::vector<char*> args;
      for (const std::string& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      setenv("OMP_NUM_THREADS", "1", 1);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  Process(Process&& o) noexcept : pid_(o.pid_) { o.pid_ = -1; }
  Process& operator=(Process&& o) noexcept {
    Stop();
    pid_ = o.pid_;
    o.pid_ = -1;
    return *this;
  }
  ~Process() { Stop(); }
  void Kill(int sig) {
    if (pid_ > 0) kill(pid_, sig);
  }
  bool running() const { return pid_ > 0; }
  int Wait() {
    int status = 0;
    if (pid_ > 0) waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }
  void Stop() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      Wait();
    }
  }

 private:
  pid_t pid_ = -1;
};

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// Polls `done` every 50 ms until it holds or `seconds` pass.
template <typename F>
bool WaitFor(F done, double seconds) {
  auto until = std::chrono::steady_clock::now() +
               std::chrono::milliseconds(int(seconds * 1000));
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

class Cluster {
 public:
  explicit Cluster(const std::string& name) {
    dir_ = std::filesystem::temp_directory_path() /
           ("mixcal_e2e_" + std::to_string(getpid()) + "_" + name);
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    db_path_ = (dir_ / "mixcal.db").string();
  }
  ~Cluster() {
    workers_.clear();
    coordinator_.Stop();
    if (std::getenv("MIXCAL_KEEP_TEST_DIRS") == nullptr)
      std::filesystem::remove_all(dir_);
  }

  // Starts (or restarts, on the same file and port) the coordinator.
  bool StartCoordinator(double lease_s = 2.0, double heartbeat_s = 0.25,
                        const std::vector<std::string>& extra = {}) {
    std::string port_file = (dir_ / "port").string();
    std::filesystem::remove(port_file);
    std::vector<std::string> args = {
        MIXCAL_COORDINATOR_BIN, "--listen=127.0.0.1:" + std::to_string(port_),
        "--db=" + db_path_, "--port_file=" + port_file,
        "--lease_seconds=" + std::to_string(lease_s),
        "--heartbeat_seconds=" + std::to_string(heartbeat_s)};
    args.insert(args.end(), extra.begin(), extra.end());
    coordinator_ = Process(args, (dir_ / "coordinator.log").string());
    if (!WaitFor([&] { return std::filesystem::exists(port_file); }, 20))
      return false;
    port_ = std::stoi(Slurp(port_file));
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                                   grpc::InsecureChannelCredentials());
    experiment_ = v1::ExperimentService::NewStub(channel_);
    worker_ = v1::WorkerService::NewStub(channel_);
    return true;
  }
  void KillCoordinator() {
    coordinator_.Kill(SIGKILL);
    coordinator_.Wait();
  }
  // Returns the worker's index.
  size_t StartWorker(const std::vector<std::string>& extra = {}) {
    size_t i = workers_.size();
    std::vector<std::string> args = WorkerArgs(i);
    args.insert(args.end(), extra.begin(), extra.end());
    workers_.emplace_back(args, WorkerLog(i));
    return i;
  }
  // Waits for worker i to exit by itself; its wait status.
  int WaitWorker(size_t i) { return workers_[i].Wait(); }
  std::vector<std::string> WorkerArgs(size_t i) const {
    return {MIXCAL_WORKER_BIN,
            "--coordinator=127.0.0.1:" + std::to_string(port_), "--threads=1",
            "--name=w" + std::to_string(i),
            "--checkpoint_dir=" + (dir_ / "checkpoints").string()};
  }
  void KillWorker(size_t i, int sig = SIGKILL) {
    workers_[i].Kill(sig);
    workers_[i].Wait();
  }
  void KillWorkerNoWait(size_t i, int sig) { workers_[i].Kill(sig); }
  // Sends `sig` without waiting (SIGSTOP, SIGCONT).
  void SignalWorker(size_t i, int sig) { workers_[i].Kill(sig); }
  // Starts worker i again under its own name (after KillWorker).
  void RestartWorker(size_t i) {
    workers_[i] = Process(WorkerArgs(i), WorkerLog(i));
  }
  // Puts the database somewhere else (a small filesystem); before the
  // coordinator starts.
  void SetDbPath(const std::string& path) { db_path_ = path; }
  const std::string& db_path() const { return db_path_; }
  const std::filesystem::path& dir() const { return dir_; }
  std::string WorkerLog(size_t i) const {
    return (dir_ / ("worker" + std::to_string(i) + ".log")).string();
  }
  std::string CoordinatorLog() const {
    return (dir_ / "coordinator.log").string();
  }

  v1::ExperimentService::Stub& api() { return *experiment_; }
  v1::WorkerService::Stub& workers() { return *worker_; }
  int port() const { return port_; }

  v1::Sweep GetSweep(int64_t id) {
    grpc::ClientContext ctx;
    v1::GetSweepRequest req;
    req.set_sweep_id(id);
    v1::Sweep s;
    experiment_->GetSweep(&ctx, req, &s);
    return s;
  }
  v1::Job GetJob(int64_t id) {
    grpc::ClientContext ctx;
    v1::GetJobRequest req;
    req.set_job_id(id);
    v1::Job j;
    experiment_->GetJob(&ctx, req, &j);
    return j;
  }
  std::vector<v1::EpochMetrics> Metrics(int64_t sweep_id,
                                        const std::string& split) {
    std::vector<v1::EpochMetrics> out;
    v1::QueryMetricsRequest req;
    req.mutable_filter()->set_sweep_id(sweep_id);
    req.mutable_filter()->set_split(split);
    do {
      grpc::ClientContext ctx;
      v1::QueryMetricsResponse resp;
      if (!experiment_->QueryMetrics(&ctx, req, &resp).ok()) break;
      out.insert(out.end(), resp.rows().begin(), resp.rows().end());
      req.mutable_filter()->set_page_token(resp.next_page_token());
    } while (!req.filter().page_token().empty());
    return out;
  }

 private:
  std::filesystem::path dir_;
  std::string db_path_;
  int port_ = 0;
  Process coordinator_;
  std::vector<Process> workers_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ExperimentService::Stub> experiment_;
  std::unique_ptr<v1::WorkerService::Stub> worker_;
};

// A small synthetic sweep that trains in about a second per job.
inline v1::SweepSpec TinySweep(const std::string& name, int epochs, int seeds,
                               uint64_t train_count = 2048) {
  v1::SweepSpec s;
  s.set_name(name);
  s.mutable_data()->set_dataset("synthetic");
  s.mutable_data()->mutable_synthetic()->set_train_count(train_count);
  s.mutable_data()->mutable_synthetic()->set_test_count(512);
  s.set_model("mlp");
  s.mutable_training()->set_epochs(epochs);
  s.mutable_training()->set_batch_size(64);
  s.add_methods()->set_name("baseline");
  v1::MethodSpec* m = s.add_methods();
  m->set_name("mixup");
  m->add_values(0.4);
  for (int i = 0; i < seeds; ++i) s.add_seeds(i);
  s.set_device("cpu");
  return s;
}

}  // namespace mixcal::testing

#endif  // MIXCAL_TESTS_E2E_HARNESS_H_
