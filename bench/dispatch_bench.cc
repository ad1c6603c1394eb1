// The coordinator under load from simulated workers that speak the real
// protocol over 127.0.0.1 but do not train:
//   1. 1,000 jobs x 100 epoch reports (15 bins each) through 32 concurrent
//      workers, on StreamReports through the worker's own sender
//      (worker::ReportSender, at most --window unacknowledged per worker),
//      then the same work as one unary ReportEpoch call per report for
//      reference: jobs/s, reports/s, AcquireJob round trip, and a check
//      that every report was stored exactly once;
//   2. dispatch latency: idle workers long-polling, single-job sweeps
//      submitted one at a time; from submit to the worker holding the job.
// Prints one JSON line at the end for bench/dispatch_bench.sh; --help lists
// the flags. The reports are the worker's rows (worker::EpochReport), its
// calls set up as the agent's (worker/calls.h); the sender logs each
// finished job on stderr, as mixcal-worker does.

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/program.h"
#include "grpcpp/grpcpp.h"
#include "mixcal/v1/experiment.grpc.pb.h"
#include "mixcal/v1/worker.grpc.pb.h"
#include "server/coordinator.h"
#include "worker/calls.h"
#include "worker/job_control.h"
#include "worker/report_sender.h"
#include "worker/reports.h"
#include "worker/stop_signal.h"

ABSL_FLAG(int, jobs, 1000, "jobs in the throughput sweep, [1, 1000000]");
ABSL_FLAG(int, reports, 100, "epoch reports per job, [1, 10000]");
ABSL_FLAG(int, workers, 32, "simulated workers, [1, 1024]");
ABSL_FLAG(int, window, 64,
          "reports a worker's stream has unacknowledged at most, [1, 1024]");
ABSL_FLAG(bool, unary, true,
          "also the same work as a ReportEpoch call per report, for "
          "reference (--nounary: not)");
ABSL_FLAG(bool, dispatch, true,
          "also part 2, the dispatch latency (--nodispatch: not)");
ABSL_FLAG(std::string, coordinator, "",
          "HOST:PORT of a running mixcal-coordinator to load, a separate "
          "process as in a lab; empty: one in this process");
ABSL_FLAG(int, coordinator_pid, 0,
          "that coordinator's process id: its CPU time is read from /proc "
          "and printed apart from the workers'; 0 = none");
ABSL_FLAG(int, predictions, 0,
          "each job's last epoch report also carries kept predictions of "
          "this many examples x 10 classes (float16, as a worker keeps the "
          "test split: 10000 for Fashion-MNIST), [0, 100000]; 0 = none");

namespace {

namespace v1 = mixcal::v1;
namespace worker = mixcal::worker;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

v1::SweepSpec Sweep(const std::string& name, int jobs, int epochs) {
  v1::SweepSpec s;
  s.set_name(name);
  s.mutable_data()->set_dataset("synthetic");
  s.set_model("mlp");
  s.mutable_training()->set_epochs(epochs);
  s.add_methods()->set_name("baseline");
  for (int i = 0; i < jobs; ++i) s.add_seeds(i);
  s.set_device("cpu");
  return s;
}

// One epoch as the trainer hands it to the worker: the test split's row
// with 15 reliability bins.
mixcal::core::EpochReport SimEpoch(int epoch) {
  mixcal::core::EpochReport r;
  r.epoch = epoch;
  mixcal::core::SplitMetrics m;
  m.split = "test";
  m.count = 9000;  // what the bins below add up to
  m.values.Set("accuracy", 0.9);
  m.values.Set("ece", 0.02);
  m.values.Set("nll", 0.3);
  for (int b = 0; b < 15; ++b)
    m.bins.push_back({600, 600 * (b + 0.5) / 15, 500});
  r.splits.push_back(std::move(m));
  return r;
}

void Die(const std::string& what, const grpc::Status& s) {
  std::fprintf(stderr, "mixcal-bench-dispatch: %s: %s\n", what.c_str(),
               s.error_message().c_str());
  std::exit(1);
}

// A simulated worker on a channel of its own, registered as the worker's
// agent registers: a deadline on each try, retried with its backoff while
// the coordinator cannot be reached yet.
struct SimWorker {
  std::unique_ptr<v1::WorkerService::Stub> stub;
  int64_t worker_id = 0;
};
SimWorker RegisterSim(const std::string& address, const std::string& host,
                      const grpc::ChannelArguments& args) {
  SimWorker sim;
  sim.stub = v1::WorkerService::NewStub(grpc::CreateCustomChannel(
      address, grpc::InsecureChannelCredentials(), args));
  v1::RegisterWorkerRequest req;
  req.set_host(host);
  req.set_device("cpu");
  worker::Backoff backoff;
  for (int tries = 1;; ++tries) {
    grpc::ClientContext ctx;
    worker::PrepareCall(ctx, "", absl::Seconds(10));
    v1::RegisterWorkerResponse resp;
    grpc::Status s = sim.stub->RegisterWorker(&ctx, req, &resp);
    if (s.ok()) {
      sim.worker_id = resp.worker_id();
      return sim;
    }
    if (!worker::Retryable(s) || tries == 20) Die("register", s);
    absl::SleepFor(backoff.Next());
  }
}

// AcquireJob as the agent's long poll calls it.
grpc::Status Acquire(const SimWorker& sim, int wait_ms,
                     v1::AcquireJobResponse* resp) {
  grpc::ClientContext ctx;
  worker::PrepareCall(ctx, "", absl::Seconds(20));
  v1::AcquireJobRequest req;
  req.set_worker_id(sim.worker_id);
  req.set_wait_ms(wait_ms);
  return sim.stub->AcquireJob(&ctx, req, resp);
}

// FinishJob (SUCCEEDED) outside a stream, as the agent calls it.
grpc::Status Finish(const SimWorker& sim, const v1::Lease& lease) {
  grpc::ClientContext ctx;
  worker::PrepareCall(ctx, "", absl::Seconds(10));
  v1::FinishJobRequest req;
  *req.mutable_lease() = lease;
  req.set_outcome(v1::SUCCEEDED);
  v1::FinishJobResponse resp;
  return sim.stub->FinishJob(&ctx, req, &resp);
}

// User + system CPU time of this process (coordinator and workers).
double CpuSeconds() {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec +
         1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// User + system CPU time of another process (Linux /proc), or 0.
double ProcessCpuSeconds(int pid) {
  if (pid <= 0) return 0;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  // Fields after the command name (which may hold spaces): state is field 3,
  // utime 14, stime 15.
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(text.substr(close + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::atof(field.c_str());
    if (i == 15) stime = std::atof(field.c_str());
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

int coordinator_pid = 0;  // --coordinator_pid: whose CPU time to read

struct Throughput {
  double seconds = 0, cpu_seconds = 0, coordinator_cpu_seconds = 0;
  int64_t sent = 0, stored = 0;
  size_t distinct = 0;
  std::vector<double> acquire_ms;
};

// Kept predictions of `rows` examples x 10 classes (--predictions): float16,
// 0.9 on the label and 0.0111 elsewhere.
mixcal::core::KeptPredictions Predictions(int rows) {
  mixcal::core::KeptPredictions k;
  const int classes = 10;
  k.split = "test";
  k.count = rows;
  k.classes = classes;
  k.probabilities.assign(static_cast<size_t>(rows) * classes * 2, '\0');
  k.labels.assign(static_cast<size_t>(rows) * 4, '\0');
  for (int i = 0; i < rows; ++i) {
    for (int c = 0; c < classes; ++c) {
      const uint16_t h = c == i % classes ? 0x3b33 : 0x21b0;
      k.probabilities[2 * (i * classes + c)] = static_cast<char>(h & 0xff);
      k.probabilities[2 * (i * classes + c) + 1] = static_cast<char>(h >> 8);
    }
    k.labels[4 * i] = static_cast<char>(i % classes);
  }
  return k;
}

// What part 1 runs: `jobs` x `reports` through `workers` simulated workers;
// `window` 0: one unary ReportEpoch per report, otherwise StreamReports
// with at most `window` reports unacknowledged per worker.
struct Load {
  std::string address;
  int jobs = 0, reports = 0, workers = 0, window = 0;
  mixcal::core::EpochReport epoch;  // the trainer's epoch, numbered anew
  mixcal::core::EpochReport last;   // the last, with kept predictions if any
};

// One job through the worker's own report sender (worker::ReportSender: its
// window, order, acks and resends): its epoch reports and its finish
// (SUCCEEDED), all pushed at once where the agent pushes one an epoch.
class SimJob {
 public:
  SimJob(const SimWorker& sim, const Load& load, const v1::Lease& lease)
      : control_(lease), sender_(Options(sim, load), &control_) {
    // The worker's rows (worker::EpochReport), built once a job; only the
    // epoch changes.
    v1::WorkerReport epoch = worker::EpochReport(load.epoch, lease);
    for (int e = 1; e < load.reports; ++e) {
      epoch.mutable_epoch()->mutable_metrics(0)->set_epoch(e);
      sender_.Push(epoch);
    }
    sender_.Push(worker::EpochReport(load.last, lease));
    v1::WorkerReport finish;
    *finish.mutable_finish()->mutable_lease() = lease;
    finish.mutable_finish()->set_outcome(v1::SUCCEEDED);
    sender_.Push(std::move(finish));
    sender_.Close();
  }

  // Until everything was acknowledged; exits the program unless it was.
  void Wait() {
    sender_.Wait();
    if (control_.lost() || control_.cancelled() ||
        sender_.unacknowledged() != 0) {
      std::fprintf(stderr,
                   "mixcal-bench-dispatch: job %lld: %zu reports not "
                   "acknowledged%s\n",
                   static_cast<long long>(control_.job_id()),
                   sender_.unacknowledged(),
                   control_.lost() ? ", lease lost" : "");
      std::exit(1);
    }
  }

 private:
  static worker::ReportSender::Options Options(const SimWorker& sim,
                                               const Load& load) {
    static worker::StopSignal never_stopped;
    worker::ReportSender::Options o;
    o.stub = sim.stub.get();
    o.address = load.address;
    o.stop = &never_stopped;
    o.max_in_flight = static_cast<size_t>(load.window);
    return o;
  }

  worker::JobControl control_;
  worker::ReportSender sender_;
};

// One worker of part 1: its jobs, until every job was leased.
void RunWorker(const Load& load, int w, std::atomic<int>* acquired,
               std::atomic<int64_t>* reports_sent, std::vector<double>* ms) {
  grpc::ChannelArguments args;
  args.SetInt("mixcal.worker", w);  // distinct channels, not one shared
  args.SetInt("mixcal.window", load.window);
  const SimWorker sim = RegisterSim(load.address, "sim", args);
  std::unique_ptr<SimJob> streaming;
  while (true) {
    // The next lease is asked for while the last job's reports stream: the
    // AcquireJob round trip stays off the report path measured.
    std::optional<v1::AcquireJobResponse> next;
    while (!next && acquired->load() < load.jobs) {
      v1::AcquireJobResponse a;
      const auto t0 = Clock::now();
      grpc::Status s = Acquire(sim, 200, &a);
      if (!s.ok()) Die("acquire", s);
      if (!a.has_job()) continue;
      ms->push_back(Ms(Clock::now() - t0));
      acquired->fetch_add(1);
      next = std::move(a);
    }
    if (streaming != nullptr) {
      streaming->Wait();
      streaming.reset();
      reports_sent->fetch_add(load.reports);
    }
    if (!next) return;
    const v1::Lease& lease = next->lease();
    if (load.window > 0) {
      streaming = std::make_unique<SimJob>(sim, load, lease);
      continue;
    }
    v1::ReportEpochRequest epoch =
        worker::EpochReport(load.epoch, lease).epoch();
    for (int e = 1; e <= load.reports; ++e) {
      if (e == load.reports)
        epoch = worker::EpochReport(load.last, lease).epoch();
      epoch.mutable_metrics(0)->set_epoch(e);
      grpc::ClientContext ctx;
      worker::PrepareCall(ctx, "", absl::Seconds(10));
      v1::ReportEpochResponse resp;
      grpc::Status s = sim.stub->ReportEpoch(&ctx, epoch, &resp);
      if (!s.ok()) Die("report", s);
      reports_sent->fetch_add(1);
    }
    if (grpc::Status s = Finish(sim, lease); !s.ok()) Die("finish", s);
  }
}

Throughput RunThroughput(const Load& load, v1::ExperimentService::Stub* api) {
  int64_t sweep_id = 0;
  {
    grpc::ClientContext ctx;
    v1::SubmitSweepRequest req;
    *req.mutable_spec() = Sweep("throughput-w" + std::to_string(load.window),
                                load.jobs, load.reports);
    v1::Sweep sweep;
    grpc::Status s = api->SubmitSweep(&ctx, req, &sweep);
    if (!s.ok()) Die("submit", s);
    sweep_id = sweep.id();
  }
  Throughput t;
  const double cpu0 = CpuSeconds();
  const double coordinator_cpu0 = ProcessCpuSeconds(coordinator_pid);
  std::atomic<int> acquired{0};
  std::atomic<int64_t> reports_sent{0};
  std::vector<std::vector<double>> ms(load.workers);
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int w = 0; w < load.workers; ++w) {
    threads.emplace_back(RunWorker, std::cref(load), w, &acquired,
                         &reports_sent, &ms[w]);
  }
  for (auto& th : threads) th.join();
  t.seconds = Ms(Clock::now() - start) / 1000;
  t.cpu_seconds = CpuSeconds() - cpu0;
  t.coordinator_cpu_seconds =
      ProcessCpuSeconds(coordinator_pid) - coordinator_cpu0;
  t.sent = reports_sent.load();
  for (const auto& m : ms)
    t.acquire_ms.insert(t.acquire_ms.end(), m.begin(), m.end());

  // Every job finished, every report stored exactly once?
  {
    grpc::ClientContext ctx;
    v1::GetSweepRequest req;
    req.set_sweep_id(sweep_id);
    v1::Sweep sweep;
    grpc::Status s = api->GetSweep(&ctx, req, &sweep);
    if (!s.ok()) Die("get sweep", s);
    if (static_cast<int>(sweep.counts().succeeded()) != load.jobs) {
      std::fprintf(stderr, "mixcal-bench-dispatch: %u of %d jobs SUCCEEDED\n",
                   sweep.counts().succeeded(), load.jobs);
      std::exit(1);
    }
  }
  std::set<std::pair<int64_t, uint32_t>> keys;
  v1::QueryMetricsRequest q;
  q.mutable_filter()->set_sweep_id(sweep_id);
  q.mutable_filter()->set_page_size(10000);
  do {
    grpc::ClientContext ctx;
    v1::QueryMetricsResponse r;
    grpc::Status s = api->QueryMetrics(&ctx, q, &r);
    if (!s.ok()) Die("query", s);
    for (const auto& row : r.rows()) keys.insert({row.job_id(), row.epoch()});
    t.stored += r.rows_size();
    q.mutable_filter()->set_page_token(r.next_page_token());
  } while (!q.filter().page_token().empty());
  t.distinct = keys.size();
  return t;
}

void PrintThroughput(const char* what, const Throughput& t, int jobs,
                     int reports, int workers) {
  std::printf(
      "mixcal %s: %d jobs x %d reports through %d workers in %.2f s: %.1f "
      "jobs/s, %.0f reports/s; %.2f CPU cores busy, %.1f us of CPU per "
      "report\n",
      what, jobs, reports, workers, t.seconds, jobs / t.seconds,
      t.sent / t.seconds, t.cpu_seconds / t.seconds,
      1e6 * t.cpu_seconds / t.sent);
  std::printf(
      "mixcal %s: reports sent %lld, rows stored %lld, distinct (job, epoch) "
      "%zu; AcquireJob round trip median %.2f ms, p99 %.2f ms\n",
      what, static_cast<long long>(t.sent), static_cast<long long>(t.stored),
      t.distinct, Percentile(t.acquire_ms, 0.5),
      Percentile(t.acquire_ms, 0.99));
  if (coordinator_pid > 0) {
    std::printf(
        "mixcal %s: the coordinator process: %.2f CPU cores busy, %.1f us of "
        "CPU per report\n",
        what, t.coordinator_cpu_seconds / t.seconds,
        1e6 * t.coordinator_cpu_seconds / t.sent);
  }
}

// 2: dispatch latency, queued -> acquired: 8 idle workers long-polling, 200
// single-job sweeps submitted one at a time. Milliseconds per job.
std::vector<double> RunDispatch(const std::string& address,
                                v1::ExperimentService::Stub* api) {
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<std::thread> idle;
  std::atomic<int> got{0};
  const int sweeps = 200;
  std::vector<Clock::time_point> acquired(sweeps + 1);
  for (int w = 0; w < 8; ++w) {
    idle.emplace_back([&, w] {
      grpc::ChannelArguments args;
      args.SetInt("mixcal.idle", w);
      const SimWorker sim = RegisterSim(address, "idle", args);
      while (!stop.load()) {
        v1::AcquireJobResponse a;
        if (!Acquire(sim, 1000, &a).ok() || !a.has_job()) continue;
        const auto now = Clock::now();
        {
          std::lock_guard<std::mutex> lock(mu);
          acquired[a.job().sweep_id() % (sweeps + 1)] = now;
        }
        got.fetch_add(1);
        Finish(sim, a.lease());
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // all waiting
  std::vector<std::pair<int64_t, Clock::time_point>> sent;
  for (int i = 0; i < sweeps; ++i) {
    grpc::ClientContext ctx;
    v1::SubmitSweepRequest req;
    *req.mutable_spec() = Sweep("dispatch-" + std::to_string(i), 1, 1);
    v1::Sweep sweep;
    const auto t0 = Clock::now();
    grpc::Status s = api->SubmitSweep(&ctx, req, &sweep);
    if (!s.ok()) Die("submit", s);
    sent.push_back({sweep.id(), t0});
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (got.load() < i + 1 && Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  stop.store(true);
  for (auto& t : idle) t.join();
  std::vector<double> ms;
  for (const auto& [id, t0] : sent) {
    const Clock::time_point t1 = acquired[id % (sweeps + 1)];
    if (t1 > t0) ms.push_back(Ms(t1 - t0));
  }
  return ms;
}

constexpr const char* kUsage =
    "The coordinator under simulated workers that speak the worker's own "
    "protocol code but do not train (bench/dispatch_bench.sh runs it).\n"
    "  mixcal-bench-dispatch --coordinator 127.0.0.1:7707 --nounary";

// A flag outside [lo, hi]: one line naming it, and false.
bool InRange(const char* flag, int value, int lo, int hi) {
  if (value >= lo && value <= hi) return true;
  std::fprintf(stderr,
               "mixcal-bench-dispatch: --%s must be in [%d, %d], got %d\n",
               flag, lo, hi, value);
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  if (!mixcal::ParseProgramFlags(argc, argv, kUsage)) return 0;  // --help
  Load load;
  load.jobs = absl::GetFlag(FLAGS_jobs);
  load.reports = absl::GetFlag(FLAGS_reports);
  load.workers = absl::GetFlag(FLAGS_workers);
  const int window = absl::GetFlag(FLAGS_window);
  const int rows = absl::GetFlag(FLAGS_predictions);
  const std::string external = absl::GetFlag(FLAGS_coordinator);
  coordinator_pid = absl::GetFlag(FLAGS_coordinator_pid);
  if (!InRange("jobs", load.jobs, 1, 1000000) ||
      !InRange("reports", load.reports, 1, 10000) ||
      !InRange("workers", load.workers, 1, 1024) ||
      !InRange("window", window, 1, 1024) ||
      !InRange("predictions", rows, 0, 100000) ||
      !InRange("coordinator_pid", coordinator_pid, 0, 1 << 30)) {
    return 2;
  }
  if (coordinator_pid > 0 && external.empty()) {
    std::fprintf(stderr,
                 "mixcal-bench-dispatch: --coordinator_pid needs "
                 "--coordinator, the coordinator it names\n");
    return 2;
  }
  const bool unary = absl::GetFlag(FLAGS_unary);
  const bool dispatch = absl::GetFlag(FLAGS_dispatch);
  load.epoch = SimEpoch(1);
  load.last = SimEpoch(load.reports);
  if (rows > 0) load.last.predictions.push_back(Predictions(rows));
  // This process stands for the coordinator and the workers, and both set
  // this (base/program.h).
  mixcal::KeepFreedMemory();
  const fs::path dir = fs::temp_directory_path() /
                       ("mixcal-bench-dispatch-" + std::to_string(getpid()));
  std::unique_ptr<mixcal::server::Coordinator> coordinator;
  load.address = external;
  if (load.address.empty()) {
    fs::create_directories(dir);
    mixcal::server::CoordinatorOptions o;
    o.listen = "127.0.0.1:0";
    o.db_path = (dir / "mixcal.db").string();
    auto started = mixcal::server::Coordinator::Start(o);
    if (!started.ok()) {
      std::fprintf(stderr, "%s\n", started.status().ToString().c_str());
      return 1;
    }
    coordinator = std::move(*started);
    load.address = "127.0.0.1:" + std::to_string(coordinator->port());
  }
  auto api = v1::ExperimentService::NewStub(
      grpc::CreateChannel(load.address, grpc::InsecureChannelCredentials()));

  // --- 1: throughput: the report stream, and unary calls for reference ---
  load.window = window;
  const Throughput streamed = RunThroughput(load, api.get());
  PrintThroughput(("StreamReports, window " + std::to_string(window)).c_str(),
                  streamed, load.jobs, load.reports, load.workers);
  Throughput called;
  if (unary) {
    load.window = 0;
    called = RunThroughput(load, api.get());
    PrintThroughput("ReportEpoch calls", called, load.jobs, load.reports,
                    load.workers);
    std::printf(
        "mixcal: stream / unary calls: %.2fx reports/s\n",
        (streamed.sent / streamed.seconds) / (called.sent / called.seconds));
  }

  // --- 2: dispatch latency, queued -> acquired, with idle workers waiting ---
  std::vector<double> dispatch_ms;
  if (dispatch) {
    dispatch_ms = RunDispatch(load.address, api.get());
    std::printf(
        "mixcal: dispatch latency, submit -> acquired by an idle worker (%zu "
        "jobs): median %.2f ms, p99 %.2f ms\n",
        dispatch_ms.size(), Percentile(dispatch_ms, 0.5),
        Percentile(dispatch_ms, 0.99));
  }
  std::printf(
      "{\"jobs\":%d,\"window\":%d,\"reports\":%lld,\"seconds\":%.4f,"
      "\"reports_per_sec\":%.1f,\"jobs_per_sec\":%.2f,\"stored\":%lld,"
      "\"distinct\":%zu,\"unary_reports_per_sec\":%.1f,"
      "\"worker_cpu_us_per_report\":%.2f,"
      "\"coordinator_cpu_us_per_report\":%.2f,"
      "\"dispatch_p50_ms\":%.3f,\"dispatch_p99_ms\":%.3f}\n",
      load.jobs, window, static_cast<long long>(streamed.sent),
      streamed.seconds, streamed.sent / streamed.seconds,
      load.jobs / streamed.seconds, static_cast<long long>(streamed.stored),
      streamed.distinct, unary ? called.sent / called.seconds : 0.0,
      1e6 * streamed.cpu_seconds / streamed.sent,
      1e6 * streamed.coordinator_cpu_seconds / streamed.sent,
      Percentile(dispatch_ms, 0.5), Percentile(dispatch_ms, 0.99));
  coordinator.reset();
  if (external.empty()) fs::remove_all(dir);
  return 0;
}
