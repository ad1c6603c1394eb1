// Memory held for WatchSweep streams that never read (server/watch_hub.h):
// one coordinator process (--watch_buffer_mb, 16 by default), --watchers
// (40) streams that never read, each on a connection of its own, while a
// simulated worker reports --reports epochs of 8 splits x 15 bins as fast as
// it can (every report is 8 updates for each watcher). Printed: the
// coordinator's RSS at start, at its peak, per watcher, and after the
// watchers closed; how many were cut off (RESOURCE_EXHAUSTED); and whether
// one caller's watcher past --max_watchers_per_caller was refused.
//
//   mixcal-bench-watch-memory [--watchers 40] [--watch_buffer_mb 16]
//                             [--reports 20000]
// bench/watch_memory_bench.sh builds it and runs it; docs/benchmarks.md
// quotes a run.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "base/program.h"
#include "bench/bench_process.h"
#include "grpcpp/grpcpp.h"
#include "mixcal/v1/experiment.grpc.pb.h"
#include "mixcal/v1/worker.grpc.pb.h"

ABSL_FLAG(int, watchers, 40, "WatchSweep streams that never read");
ABSL_FLAG(int, watch_buffer_mb, 16, "the coordinator's --watch_buffer_mb");
ABSL_FLAG(int, reports, 10000,
          "epoch reports of 8 splits each to send, one epoch each (1 to 10000, "
          "a job's most epochs)");

namespace {

namespace v1 = mixcal::v1;
namespace fs = std::filesystem;
using mixcal::bench::OwnChannel;
using mixcal::bench::Stat;

constexpr char kUsage[] =
    "mixcal-bench-watch-memory: the coordinator's memory under WatchSweep "
    "streams that never read (see bench/watch_memory_bench.cc).";

// One split's metrics at epoch `epoch`: 1,000 examples in 15 bins.
v1::EpochMetrics Split(const std::string& name, int epoch) {
  v1::EpochMetrics m;
  m.set_epoch(epoch);
  m.set_split(name);
  m.set_count(1000);
  m.set_accuracy(0.9);
  m.set_ece(0.01 * (epoch % 10));
  m.set_nll(0.3);
  for (int b = 0; b < 15; ++b) {
    v1::ReliabilityBin* bin = m.add_bins();
    bin->set_count(b == 14 ? 1000 : 0);
    bin->set_confidence_sum(b == 14 ? 970.0 : 0);
    bin->set_correct(b == 14 ? 900 : 0);
  }
  return m;
}

// A watch that reads its opening update and then nothing.
struct Stalled {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::ExperimentService::Stub> stub;
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReader<v1::SweepUpdate>> reader;
};

}  // namespace

int main(int argc, char** argv) {
  if (!mixcal::ParseProgramFlags(argc, argv, kUsage)) return 0;
  const int num_watchers = absl::GetFlag(FLAGS_watchers);
  const int buffer_mb = absl::GetFlag(FLAGS_watch_buffer_mb);
  const int num_reports = absl::GetFlag(FLAGS_reports);
  if (num_reports < 1 || num_reports > 10000) {
    std::fprintf(stderr, "watch-memory: --reports must be in [1, 10000], got %d\n",
                 num_reports);
    return 2;
  }
  const fs::path dir = fs::temp_directory_path() /
                       ("mixcal_watchmem_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const mixcal::bench::StartedCoordinator started = mixcal::bench::StartCoordinator(
      MIXCAL_COORDINATOR_BIN, dir,
      {"--lease_seconds=600", "--heartbeat_seconds=10",
       "--watch_buffer_mb=" + std::to_string(buffer_mb),
       "--max_watchers_per_caller=" + std::to_string(num_watchers)});
  const pid_t coordinator = started.pid;
  if (started.address.empty()) {
    std::fprintf(stderr, "watch-memory: the coordinator did not start; see %s\n",
                 (dir / "coordinator.log").c_str());
    return 1;
  }
  const std::string address = started.address;
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  auto api = v1::ExperimentService::NewStub(channel);
  auto workers = v1::WorkerService::NewStub(channel);

  v1::SweepSpec spec;
  spec.set_name("watch-memory");
  spec.mutable_data()->set_dataset("synthetic");
  spec.set_model("mlp");
  // One epoch per report: the coordinator takes each epoch once, in order.
  spec.mutable_training()->set_epochs(num_reports);
  spec.add_methods()->set_name("baseline");
  spec.add_seeds(0);
  spec.set_device("cpu");
  int64_t sweep_id = 0;
  v1::Lease lease;
  {
    grpc::ClientContext ctx;
    v1::SubmitSweepRequest req;
    *req.mutable_spec() = spec;
    v1::Sweep sweep;
    grpc::Status s = api->SubmitSweep(&ctx, req, &sweep);
    if (!s.ok()) {
      std::fprintf(stderr, "watch-memory: submit: %s\n",
                   s.error_message().c_str());
      return 1;
    }
    sweep_id = sweep.id();
    grpc::ClientContext rctx;
    v1::RegisterWorkerRequest reg;
    reg.set_host("bench");
    reg.set_device("cpu");
    v1::RegisterWorkerResponse w;
    workers->RegisterWorker(&rctx, reg, &w);
    grpc::ClientContext actx;
    v1::AcquireJobRequest areq;
    areq.set_worker_id(w.worker_id());
    areq.set_wait_ms(5000);
    v1::AcquireJobResponse a;
    workers->AcquireJob(&actx, areq, &a);
    if (!a.has_job()) {
      std::fprintf(stderr, "watch-memory: no job leased\n");
      return 1;
    }
    lease = a.lease();
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const mixcal::bench::ProcStat at_start = Stat(coordinator);

  std::vector<std::unique_ptr<Stalled>> stalled;
  for (int i = 0; i < num_watchers; ++i) {
    auto w = std::make_unique<Stalled>();
    w->channel = OwnChannel(address);
    w->stub = v1::ExperimentService::NewStub(w->channel);
    v1::WatchSweepRequest req;
    req.set_sweep_id(sweep_id);
    w->reader = w->stub->WatchSweep(&w->ctx, req);
    v1::SweepUpdate first;
    if (!w->reader->Read(&first)) {
      std::fprintf(stderr, "watch-memory: watcher %d: %s\n", i,
                   w->reader->Finish().error_message().c_str());
      return 1;
    }
    stalled.push_back(std::move(w));
  }
  // One more from the same caller: past --max_watchers_per_caller.
  grpc::StatusCode extra_code = grpc::StatusCode::OK;
  {
    Stalled extra;
    extra.channel = OwnChannel(address);
    extra.stub = v1::ExperimentService::NewStub(extra.channel);
    v1::WatchSweepRequest req;
    req.set_sweep_id(sweep_id);
    extra.reader = extra.stub->WatchSweep(&extra.ctx, req);
    v1::SweepUpdate first;
    if (!extra.reader->Read(&first)) {
      extra_code = extra.reader->Finish().error_code();
    } else {
      extra.ctx.TryCancel();
      extra.reader->Finish();
    }
  }

  std::atomic<bool> stop{false};
  std::atomic<double> peak_mb{at_start.rss_mb};
  std::thread sampler([&] {
    while (!stop.load()) {
      const double rss = Stat(coordinator).rss_mb;
      if (rss > peak_mb.load()) peak_mb.store(rss);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  const char* kSplits[] = {"test",    "test_ts", "test_vs", "test_ms",
                           "test_iso", "train",  "noise",   "ood"};
  const auto start = std::chrono::steady_clock::now();
  int failed = 0;
  for (int r = 0; r < num_reports; ++r) {
    grpc::ClientContext ctx;
    v1::ReportEpochRequest req;
    *req.mutable_lease() = lease;
    for (int k = 0; k < 8; ++k) *req.add_metrics() = Split(kSplits[k], r + 1);
    v1::ReportEpochResponse resp;
    if (!workers->ReportEpoch(&ctx, req, &resp).ok()) ++failed;
  }
  const double send_s = std::chrono::duration<double>(
                            std::chrono::steady_clock::now() - start)
                            .count();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const double before_close = Stat(coordinator).rss_mb;

  // Now they read: what was in flight, then how each ended.
  int cut_off = 0, open = 0;
  // A watch still open after 15 s is cancelled (a Read blocks while the
  // stream is open and quiet).
  std::atomic<bool> reading_done{false};
  std::thread canceller([&] {
    const auto until =
        std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (!reading_done.load() && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (!reading_done.load())
      for (auto& w : stalled) w->ctx.TryCancel();
  });
  for (auto& w : stalled) {
    w->ctx.set_wait_for_ready(false);
    v1::SweepUpdate u;
    const auto read_until =
        std::chrono::steady_clock::now() + std::chrono::seconds(10);
    bool ended = true;
    while (w->reader->Read(&u)) {
      if (std::chrono::steady_clock::now() > read_until) {
        ended = false;
        break;
      }
    }
    if (!ended) {
      w->ctx.TryCancel();
      while (w->reader->Read(&u)) {
      }
    }
    const grpc::Status s = w->reader->Finish();
    if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      ++cut_off;
    } else {
      ++open;
    }
  }
  reading_done.store(true);
  canceller.join();
  stalled.clear();
  std::this_thread::sleep_for(std::chrono::seconds(3));
  const double after_close = Stat(coordinator).rss_mb;
  stop.store(true);
  sampler.join();

  std::printf("watch-memory: %d never-reading watchers, --watch_buffer_mb %d\n",
              num_watchers, buffer_mb);
  std::printf("watch-memory: %d reports of 8 splits sent in %.1f s (%d "
              "refused)\n",
              num_reports, send_s, failed);
  std::printf("watch-memory: coordinator RSS %.1f MB at start, peak %.1f MB, "
              "%.1f MB before they read\n",
              at_start.rss_mb, peak_mb.load(), before_close);
  std::printf("watch-memory: per watcher %.1f MB at the peak (bound %d MiB "
              "of updates, plus HTTP/2 windows)\n",
              (peak_mb.load() - at_start.rss_mb) / num_watchers, buffer_mb);
  std::printf("watch-memory: cut off (RESOURCE_EXHAUSTED) %d, still open %d\n",
              cut_off, open);
  std::printf("watch-memory: RSS %.1f MB 3 s after they closed\n",
              after_close);
  std::printf("watch-memory: watcher %d of one caller: %s\n",
              num_watchers + 1,
              extra_code == grpc::StatusCode::RESOURCE_EXHAUSTED
                  ? "refused (RESOURCE_EXHAUSTED)"
                  : "NOT refused");
  kill(coordinator, SIGTERM);
  waitpid(coordinator, nullptr, 0);
  fs::remove_all(dir);
  return extra_code == grpc::StatusCode::RESOURCE_EXHAUSTED ? 0 : 1;
}
