// Load on one coordinator process while real jobs run:
//   phase 1 (--seconds, default 120): 2 real mixcal-worker processes train a
//     sweep; --workers (200) simulated workers heartbeat every 0.5 s, each on
//     a connection of its own; --watchers (100) WatchSweep streams read
//     everything; --slow (20) more WatchSweep streams never read. Printed:
//     errors by code, heartbeat latency, coordinator RSS, threads and CPU
//     each 10 s, and what happened to the slow watchers;
//   phase 2: the slow watchers are cut off; RSS 5 s later;
//   phase 3: --streams (2000) more WatchSweep streams, each on its own
//     connection, opened at once: how many were served, how many refused and
//     how, and whether the coordinator still answers.
//
//   mixcal-bench-load [--seconds 120] [--workers 200] [--watchers 100]
//                     [--slow 20] [--streams 2000]
// bench/load_bench.sh builds it and runs it; docs/benchmarks.md quotes a run.

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "base/program.h"
#include "bench/bench_process.h"
#include "grpcpp/grpcpp.h"
#include "mixcal/v1/experiment.grpc.pb.h"
#include "mixcal/v1/worker.grpc.pb.h"

ABSL_FLAG(double, seconds, 120, "length of the main phase");
ABSL_FLAG(int, workers, 200, "simulated workers heartbeating every 0.5 s");
ABSL_FLAG(int, watchers, 100, "WatchSweep streams that read everything");
ABSL_FLAG(int, slow, 20, "WatchSweep streams that never read");
ABSL_FLAG(int, streams, 2000, "streams opened at once in phase 3");
ABSL_FLAG(int, coordinator_nofile, 0,
          "start the coordinator with this open-files limit (soft and hard), "
          "as under a common `ulimit -n 1024`; 0 = this process's own");
ABSL_FLAG(int, watch_buffer_mb, 1,
          "the coordinator's --watch_buffer_mb: small, so that the slow "
          "watchers reach it within the run");

namespace {

namespace v1 = mixcal::v1;
using mixcal::bench::OwnChannel;
using mixcal::bench::ProcStat;
using mixcal::bench::Spawn;
using mixcal::bench::Stat;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr char kUsage[] =
    "mixcal-bench-load: one coordinator process under heartbeating workers "
    "and watchers while real jobs run (see bench/load_bench.cc).";

struct Errors {
  std::mutex mu;
  std::map<std::string, int64_t> by_kind;
  void Add(const std::string& kind) {
    std::lock_guard<std::mutex> l(mu);
    ++by_kind[kind];
  }
  int64_t Total() {
    std::lock_guard<std::mutex> l(mu);
    int64_t n = 0;
    for (const auto& [k, v] : by_kind) n += v;
    return n;
  }
};

// A WatchSweep stream through the callback API: reads everything, or
// (slow) nothing at all.
class Watcher : public grpc::ClientReadReactor<v1::SweepUpdate> {
 public:
  Watcher(v1::ExperimentService::Stub* stub, int64_t sweep, bool read)
      : read_(read) {
    req_.set_sweep_id(sweep);
    stub->async()->WatchSweep(&ctx_, &req_, this);
    if (read_) StartRead(&update_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    updates_.fetch_add(1);
    StartRead(&update_);
  }
  void OnDone(const grpc::Status& s) override {
    std::lock_guard<std::mutex> l(mu_);
    status_ = s;
    done_ = true;
  }
  void Cancel() { ctx_.TryCancel(); }
  bool done() {
    std::lock_guard<std::mutex> l(mu_);
    return done_;
  }
  grpc::Status status() {
    std::lock_guard<std::mutex> l(mu_);
    return status_;
  }
  int64_t updates() const { return updates_.load(); }

 private:
  const bool read_;
  grpc::ClientContext ctx_;
  v1::WatchSweepRequest req_;
  v1::SweepUpdate update_;
  std::atomic<int64_t> updates_{0};
  std::mutex mu_;
  bool done_ = false;
  grpc::Status status_;
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

}  // namespace

int main(int argc, char** argv) {
  if (!mixcal::ParseProgramFlags(argc, argv, kUsage)) return 0;
  const double seconds = absl::GetFlag(FLAGS_seconds);
  const int num_workers = absl::GetFlag(FLAGS_workers);
  const int num_watchers = absl::GetFlag(FLAGS_watchers);
  const int num_slow = absl::GetFlag(FLAGS_slow);
  const int num_streams = absl::GetFlag(FLAGS_streams);
  // This process holds a connection per simulated client.
  if (rlimit fds; getrlimit(RLIMIT_NOFILE, &fds) == 0) {
    fds.rlim_cur = fds.rlim_max;
    setrlimit(RLIMIT_NOFILE, &fds);
  }

  const fs::path dir = fs::temp_directory_path() /
                       ("mixcal_load_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const mixcal::bench::StartedCoordinator started = mixcal::bench::StartCoordinator(
      MIXCAL_COORDINATOR_BIN, dir,
      {"--lease_seconds=10", "--heartbeat_seconds=0.5",
       "--watch_buffer_mb=" + std::to_string(absl::GetFlag(FLAGS_watch_buffer_mb)),
       // One caller ("local") opens them all here.
       "--max_watchers_per_caller=100000"},
      absl::GetFlag(FLAGS_coordinator_nofile));
  const pid_t coordinator = started.pid;
  if (started.address.empty()) {
    std::fprintf(stderr, "load: the coordinator did not start; see %s\n",
                 (dir / "coordinator.log").c_str());
    return 1;
  }
  const std::string address = started.address;
  auto main_channel =
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  auto api = v1::ExperimentService::NewStub(main_channel);

  // Real jobs: a sweep long enough to outlast the main phase.
  v1::SweepSpec spec;
  spec.set_name("load");
  spec.mutable_data()->set_dataset("synthetic");
  spec.mutable_data()->mutable_synthetic()->set_train_count(16384);
  spec.mutable_data()->mutable_synthetic()->set_test_count(512);
  spec.set_model("mlp");
  spec.mutable_training()->set_epochs(2000);
  spec.add_methods()->set_name("baseline");
  v1::MethodSpec* mixup = spec.add_methods();
  mixup->set_name("mixup");
  mixup->add_values(0.4);
  spec.add_seeds(0);
  spec.add_seeds(1);
  spec.set_device("cpu");
  int64_t sweep_id = 0;
  {
    grpc::ClientContext ctx;
    v1::SubmitSweepRequest req;
    *req.mutable_spec() = spec;
    v1::Sweep sweep;
    grpc::Status s = api->SubmitSweep(&ctx, req, &sweep);
    if (!s.ok()) {
      std::fprintf(stderr, "load: submit: %s\n", s.error_message().c_str());
      return 1;
    }
    sweep_id = sweep.id();
  }
  std::vector<pid_t> real_workers;
  for (int i = 0; i < 2; ++i) {
    real_workers.push_back(Spawn(
        {MIXCAL_WORKER_BIN, "--coordinator=" + address, "--threads=1",
         "--name=real" + std::to_string(i),
         "--checkpoint_dir=" + (dir / "checkpoints").string()},
        (dir / ("worker" + std::to_string(i) + ".log")).string()));
  }

  Errors errors;
  // Simulated workers: registered, then a heartbeat each 0.5 s.
  struct Sim {
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<v1::WorkerService::Stub> stub;
    int64_t id = 0;
  };
  std::vector<Sim> sims(num_workers);
  for (int i = 0; i < num_workers; ++i) {
    sims[i].channel = OwnChannel(address);
    sims[i].stub = v1::WorkerService::NewStub(sims[i].channel);
    grpc::ClientContext ctx;
    v1::RegisterWorkerRequest req;
    req.set_host("sim");
    req.set_device("cuda:0");  // takes none of the cpu jobs
    req.set_name("sim" + std::to_string(i));
    v1::RegisterWorkerResponse resp;
    grpc::Status s = sims[i].stub->RegisterWorker(&ctx, req, &resp);
    if (!s.ok()) errors.Add("register: " + s.error_message());
    sims[i].id = resp.worker_id();
  }
  std::mutex lat_mu;
  std::vector<double> latencies_ms;
  std::atomic<bool> stop{false};
  std::atomic<int64_t> heartbeats{0};
  std::vector<std::thread> beaters;
  constexpr int kBeatThreads = 8;
  for (int t = 0; t < kBeatThreads; ++t) {
    beaters.emplace_back([&, t] {
      while (!stop.load()) {
        const auto round = Clock::now();
        for (int i = t; i < num_workers; i += kBeatThreads) {
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::seconds(5));
          v1::HeartbeatRequest req;
          req.set_worker_id(sims[i].id);
          v1::HeartbeatResponse resp;
          const auto t0 = Clock::now();
          grpc::Status s = sims[i].stub->Heartbeat(&ctx, req, &resp);
          const double ms =
              std::chrono::duration<double, std::milli>(Clock::now() - t0)
                  .count();
          heartbeats.fetch_add(1);
          if (!s.ok()) {
            errors.Add("heartbeat: " + std::to_string(s.error_code()) + " " +
                       s.error_message().substr(0, 80));
          }
          std::lock_guard<std::mutex> l(lat_mu);
          latencies_ms.push_back(ms);
        }
        std::this_thread::sleep_until(round + std::chrono::milliseconds(500));
      }
    });
  }

  // Watchers, each on a connection of its own.
  std::vector<std::shared_ptr<grpc::Channel>> watch_channels;
  std::vector<std::unique_ptr<v1::ExperimentService::Stub>> watch_stubs;
  std::vector<std::unique_ptr<Watcher>> watchers, slow;
  for (int i = 0; i < num_watchers + num_slow; ++i) {
    watch_channels.push_back(OwnChannel(address));
    watch_stubs.push_back(
        v1::ExperimentService::NewStub(watch_channels.back()));
    if (i < num_watchers) {
      watchers.push_back(
          std::make_unique<Watcher>(watch_stubs.back().get(), sweep_id, true));
    } else {
      slow.push_back(
          std::make_unique<Watcher>(watch_stubs.back().get(), sweep_id, false));
    }
  }

  std::printf("load: coordinator pid %d; %d simulated workers heartbeating "
              "every 0.5 s, %d watchers reading, %d never reading, 2 real "
              "workers training; %.0f s\n",
              coordinator, num_workers, num_watchers, num_slow, seconds);
  const ProcStat at_start = Stat(coordinator);
  const auto start = Clock::now();
  double peak_rss = 0;
  int peak_threads = 0;
  for (int tick = 1;; ++tick) {
    std::this_thread::sleep_until(start + std::chrono::seconds(tick));
    const ProcStat s = Stat(coordinator);
    peak_rss = std::max(peak_rss, s.rss_mb);
    peak_threads = std::max(peak_threads, s.threads);
    if (tick % 10 == 0 || tick >= seconds) {
      int64_t read = 0;
      for (auto& w : watchers) read += w->updates();
      std::printf("load: t=%3d s  RSS %6.1f MB  threads %3d  fds %4d  CPU "
                  "%5.1f%%  heartbeats %lld  updates read %lld  errors %lld\n",
                  tick, s.rss_mb, s.threads, s.fds,
                  100 * (s.cpu_s - at_start.cpu_s) / tick,
                  static_cast<long long>(heartbeats.load()),
                  static_cast<long long>(read),
                  static_cast<long long>(errors.Total()));
      std::fflush(stdout);
    }
    if (tick >= seconds) break;
  }
  stop.store(true);
  for (auto& t : beaters) t.join();
  const ProcStat after_main = Stat(coordinator);

  // Watchers that read must all still be open (the sweep has not ended).
  int watchers_ended = 0;
  for (auto& w : watchers) {
    if (w->done()) {
      ++watchers_ended;
      errors.Add("watcher ended: " + w->status().error_message().substr(0, 80));
    }
  }
  std::map<std::string, int> slow_outcome;
  for (auto& w : slow) {
    slow_outcome[w->done() ? "cut off: " + std::to_string(
                                               w->status().error_code())
                           : "still open"]++;
  }
  // Phase 2: cut the slow watchers off; memory must come back down.
  for (auto& w : slow) w->Cancel();
  std::this_thread::sleep_for(std::chrono::seconds(5));
  const ProcStat after_cut = Stat(coordinator);

  const double p50 = Percentile(latencies_ms, 0.5);
  const double p99 = Percentile(latencies_ms, 0.99);
  const double p999 = Percentile(latencies_ms, 0.999);
  std::printf("load: heartbeats %lld, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f "
              "ms, max %.2f ms\n",
              static_cast<long long>(heartbeats.load()), p50, p99, p999,
              latencies_ms.empty()
                  ? 0
                  : *std::max_element(latencies_ms.begin(),
                                      latencies_ms.end()));
  std::printf("load: coordinator RSS %.1f MB at start, peak %.1f MB, %.1f MB "
              "at the end, %.1f MB 5 s after the slow watchers were cut off; "
              "peak threads %d; CPU %.1f s over %.0f s (%.0f%% of a core)\n",
              at_start.rss_mb, peak_rss, after_main.rss_mb, after_cut.rss_mb,
              peak_threads, after_main.cpu_s - at_start.cpu_s, seconds,
              100 * (after_main.cpu_s - at_start.cpu_s) / seconds);
  std::printf("load: slow watchers:");
  for (const auto& [k, n] : slow_outcome) std::printf(" %s x%d", k.c_str(), n);
  std::printf("; reading watchers ended early: %d\n", watchers_ended);
  {
    std::lock_guard<std::mutex> l(errors.mu);
    std::printf("load: errors %lld\n", static_cast<long long>([&] {
                  int64_t n = 0;
                  for (const auto& [k, v] : errors.by_kind) n += v;
                  return n;
                }()));
    for (const auto& [k, v] : errors.by_kind)
      std::printf("load:   %s x%lld\n", k.c_str(), static_cast<long long>(v));
  }
  std::fflush(stdout);

  // Phase 3: many streams at once, each on its own connection.
  std::vector<std::shared_ptr<grpc::Channel>> many_channels;
  std::vector<std::unique_ptr<v1::ExperimentService::Stub>> many_stubs;
  std::vector<std::unique_ptr<Watcher>> many;
  const auto opened_at = Clock::now();
  for (int i = 0; i < num_streams; ++i) {
    many_channels.push_back(OwnChannel(address));
    many_stubs.push_back(v1::ExperimentService::NewStub(many_channels.back()));
    many.push_back(
        std::make_unique<Watcher>(many_stubs.back().get(), sweep_id, true));
  }
  std::this_thread::sleep_for(std::chrono::seconds(15));
  std::map<std::string, int> outcome;
  int serving = 0, waiting = 0;
  for (auto& w : many) {
    if (!w->done()) {
      // Served: the snapshot came; else still waiting for its connection.
      (w->updates() > 0 ? serving : waiting)++;
      continue;
    }
    outcome[std::to_string(w->status().error_code()) + " " +
            w->status().error_message().substr(0, 60)]++;
  }
  const ProcStat at_many = Stat(coordinator);
  bool answers = false;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(5));
    v1::GetSweepRequest req;
    req.set_sweep_id(sweep_id);
    v1::Sweep sweep;
    answers = api->GetSweep(&ctx, req, &sweep).ok();
  }
  const bool alive = kill(coordinator, 0) == 0 &&
                     waitpid(coordinator, nullptr, WNOHANG) == 0;
  std::printf("load: %d streams opened at once (%.1f s): after 15 s %d "
              "served, %d still waiting to connect, %zu kinds of refusal;",
              num_streams,
              std::chrono::duration<double>(Clock::now() - opened_at).count() -
                  15,
              serving, waiting, outcome.size());
  for (const auto& [k, n] : outcome) std::printf(" [%s] x%d", k.c_str(), n);
  std::printf("\nload: then coordinator RSS %.1f MB, threads %d, fds %d; "
              "alive %s, answers a new call %s\n",
              at_many.rss_mb, at_many.threads, at_many.fds,
              alive ? "yes" : "NO", answers ? "yes" : "NO");
  for (auto& w : many) w->Cancel();
  many.clear();
  many_stubs.clear();
  many_channels.clear();
  std::this_thread::sleep_for(std::chrono::seconds(3));
  // After the crowd has gone, a new client on a new connection is served.
  bool recovers = false;
  {
    auto fresh = OwnChannel(address);
    auto stub = v1::ExperimentService::NewStub(fresh);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    ctx.set_wait_for_ready(true);  // as a client that retries connecting
    v1::GetSweepRequest req;
    req.set_sweep_id(sweep_id);
    v1::Sweep sweep;
    const auto t0 = Clock::now();
    grpc::Status s = stub->GetSweep(&ctx, req, &sweep);
    std::printf("load: (answered after %.1f s)\n",
                std::chrono::duration<double>(Clock::now() - t0).count());
    recovers = s.ok();
    std::printf("load: after the %d streams closed, a new connection's call: "
                "%s\n",
                num_streams,
                s.ok() ? "OK" : (std::to_string(s.error_code()) + " " +
                                 s.error_message())
                                    .c_str());
  }
  const ProcStat after_many = Stat(coordinator);
  std::printf("load: coordinator RSS %.1f MB, fds %d after they closed\n",
              after_many.rss_mb, after_many.fds);
  for (auto& w : watchers) w->Cancel();
  std::this_thread::sleep_for(std::chrono::seconds(1));

  for (pid_t w : real_workers) kill(w, SIGKILL);
  for (pid_t w : real_workers) waitpid(w, nullptr, 0);
  kill(coordinator, SIGTERM);
  const auto term = Clock::now();
  waitpid(coordinator, nullptr, 0);
  std::printf("load: the coordinator stopped %.1f s after SIGTERM\n",
              std::chrono::duration<double>(Clock::now() - term).count());
  std::fflush(stdout);
  if (std::getenv("MIXCAL_KEEP_TEST_DIRS") == nullptr) fs::remove_all(dir);
  // Reactors may still be finishing on gRPC's threads: leave at once.
  std::_Exit(errors.Total() == 0 && alive && recovers ? 0 : 1);
}
