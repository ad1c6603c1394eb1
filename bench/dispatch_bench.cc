// The coordinator under load from simulated workers that speak the real
// protocol over 127.0.0.1 but do not train:
//   1. 1,000 jobs x 100 epoch reports (15 bins each) through 32 concurrent
//      workers, on StreamReports as mixcal-worker sends them (at most
//      --window unacknowledged per worker), then the same work as one unary
//      ReportEpoch call per report for reference: jobs/s, reports/s,
//      AcquireJob round trip, and a check that every report was stored
//      exactly once;
//   2. dispatch latency: idle workers long-polling, single-job sweeps
//      submitted one at a time; from submit to the worker holding the job.
// Prints one JSON line at the end for bench/dispatch_bench.sh.
//
//   mixcal-bench-dispatch [--jobs 1000] [--reports 100] [--workers 32]
//                         [--window 64] [--no-unary] [--no-dispatch]
//                         [--coordinator HOST:PORT] [--predictions ROWS]
// --no-unary and --no-dispatch leave out the unary reference and part 2.
// With --predictions each job's last epoch report also carries kept
// predictions of ROWS examples x 10 classes (float16, as a worker keeps the
// test split: 10000 for Fashion-MNIST), to measure what keeping them costs
// the report path.
// With --coordinator the simulated workers load that coordinator, a separate
// process as in a lab; with --coordinator_pid its CPU time is read from
// /proc and printed apart from theirs.

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "grpcpp/grpcpp.h"
#include "mixcal/v1/experiment.grpc.pb.h"
#include "mixcal/v1/worker.grpc.pb.h"
#include "server/coordinator.h"
#include "base/program.h"

namespace {

namespace v1 = mixcal::v1;
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

v1::EpochMetrics Report(uint32_t epoch) {
  v1::EpochMetrics m;
  m.set_epoch(epoch);
  m.set_split("test");
  m.set_count(9000);  // what the bins below add up to
  m.set_accuracy(0.9);
  m.set_ece(0.02);
  m.set_nll(0.3);
  for (int b = 0; b < 15; ++b) {
    v1::ReliabilityBin* bin = m.add_bins();
    bin->set_count(600);
    bin->set_confidence_sum(600 * (b + 0.5) / 15);
    bin->set_correct(500);
  }
  return m;
}

void Die(const std::string& what, const grpc::Status& s) {
  std::fprintf(stderr, "mixcal-bench-dispatch: %s: %s\n", what.c_str(),
               s.error_message().c_str());
  std::exit(1);
}

// A simulated worker on a channel of its own, registered (waiting for the
// coordinator as a real worker retries until it connects).
struct SimWorker {
  std::unique_ptr<v1::WorkerService::Stub> stub;
  v1::RegisterWorkerResponse reg;
  grpc::Status status;
};
SimWorker RegisterSim(const std::string& address, const std::string& host,
                      const grpc::ChannelArguments& args) {
  SimWorker sim;
  sim.stub = v1::WorkerService::NewStub(grpc::CreateCustomChannel(
      address, grpc::InsecureChannelCredentials(), args));
  grpc::ClientContext ctx;
  v1::RegisterWorkerRequest req;
  req.set_host(host);
  req.set_device("cpu");
  ctx.set_wait_for_ready(true);
  sim.status = sim.stub->RegisterWorker(&ctx, req, &sim.reg);
  return sim;
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
  double seconds = 0;
  double cpu_seconds = 0;
  double coordinator_cpu_seconds = 0;
  int64_t sent = 0, stored = 0;
  size_t distinct = 0;
  std::vector<double> acquire_ms;
};

// The predictions a job's last report carries (--predictions): built once.
int g_prediction_rows = 0;
const v1::Predictions& KeptPredictions() {
  static const v1::Predictions* p = [] {
    auto* out = new v1::Predictions;
    if (g_prediction_rows <= 0) return out;
    const int classes = 10;
    std::string probs(static_cast<size_t>(g_prediction_rows) * classes * 2, '\0');
    std::string labels(static_cast<size_t>(g_prediction_rows) * 4, '\0');
    for (int i = 0; i < g_prediction_rows; ++i) {
      for (int k = 0; k < classes; ++k) {  // 0.9 on the label, 0.0111 elsewhere
        const uint16_t h = k == i % classes ? 0x3b33 : 0x21b0;
        probs[2 * (i * classes + k)] = static_cast<char>(h & 0xff);
        probs[2 * (i * classes + k) + 1] = static_cast<char>(h >> 8);
      }
      labels[4 * i] = static_cast<char>(i % classes);
    }
    out->set_split("test");
    out->set_count(static_cast<uint32_t>(g_prediction_rows));
    out->set_classes(classes);
    out->set_probabilities(std::move(probs));
    out->set_labels(std::move(labels));
    return out;
  }();
  return *p;
}

// One job on a StreamReports stream: its epoch reports, then its finish
// (SUCCEEDED), with at most `window` unacknowledged, on gRPC's callback API
// (no thread blocks per message). The worker moves on to its next job once
// everything is sent; Wait checks that everything was acknowledged as
// stored.
class StreamJob
    : public grpc::ClientBidiReactor<v1::WorkerReport, v1::ReportAcks> {
 public:
  StreamJob(v1::WorkerService::Stub* stub, const v1::Lease& lease, int reports,
            int window, std::atomic<int64_t>* sent)
      : lease_(lease), reports_(reports), window_(window), sent_(sent) {
    stub->async()->StreamReports(&ctx_, this);
    StartRead(&acks_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      MaybeWriteLocked();
    }
    StartCall();
  }

  // Until the finish is on its way.
  void WaitSent() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return closed_ || done_; });
  }
  bool Done() {
    std::lock_guard<std::mutex> lock(mu_);
    return done_;
  }
  // Until the stream ended; exits the program unless all was stored.
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return done_; });
    if (!status_.ok()) Die("stream", status_);
    if (acked_ != reports_ + 1 || finished_ != v1::SUCCEEDED) {
      std::fprintf(stderr,
                   "mixcal-bench-dispatch: %d of %d reports acked, job %s\n",
                   acked_, reports_ + 1, v1::JobState_Name(finished_).c_str());
      std::exit(1);
    }
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) return;  // the stream failed; OnDone tells
    if (next_ <= reports_ + 1) sent_->fetch_add(1);  // an epoch report
    MaybeWriteLocked();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    for (const auto& a : acks_.acks()) {
      if (a.code() != 0) {
        std::fprintf(stderr, "mixcal-bench-dispatch: report refused: %s\n",
                     a.message().c_str());
        std::exit(1);
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      acked_ += acks_.acks_size();
      const auto& last = acks_.acks(acks_.acks_size() - 1);
      if (static_cast<int>(last.sequence()) == reports_ + 1)
        finished_ = last.state();
      MaybeWriteLocked();
    }
    StartRead(&acks_);
  }
  void OnDone(const grpc::Status& s) override {
    std::lock_guard<std::mutex> lock(mu_);
    status_ = s;
    done_ = true;
    cv_.notify_all();
  }

 private:
  void MaybeWriteLocked() {
    if (writing_ || closed_) return;
    if (next_ > reports_ + 1) {
      closed_ = true;
      cv_.notify_all();
      StartWritesDone();
      return;
    }
    if (next_ - 1 - acked_ >= window_) return;
    out_.set_sequence(next_);
    if (next_ <= reports_) {
      // The same bytes a worker would send for this epoch; the message is
      // built once and only its sequence and epoch change.
      if (!out_.has_epoch()) {
        *out_.mutable_epoch()->mutable_lease() = lease_;
        *out_.mutable_epoch()->add_metrics() = Report(next_);
      }
      out_.mutable_epoch()->mutable_metrics(0)->set_epoch(next_);
      out_.mutable_epoch()->clear_predictions();
      if (next_ == reports_ && KeptPredictions().count() > 0) {
        v1::Predictions* p = out_.mutable_epoch()->add_predictions();
        *p = KeptPredictions();
        p->set_epoch(static_cast<uint32_t>(next_));
      }
    } else {
      v1::FinishJobRequest* f = out_.mutable_finish();
      *f->mutable_lease() = lease_;
      f->set_outcome(v1::SUCCEEDED);
    }
    ++next_;
    writing_ = true;
    StartWrite(&out_);
  }

  grpc::ClientContext ctx_;
  const v1::Lease lease_;
  const int reports_, window_;
  std::atomic<int64_t>* const sent_;
  v1::ReportAcks acks_;
  v1::WorkerReport out_;
  std::mutex mu_;
  std::condition_variable cv_;
  int next_ = 1, acked_ = 0;
  v1::JobState finished_ = v1::JOB_STATE_UNSPECIFIED;
  bool writing_ = false, closed_ = false, done_ = false;
  grpc::Status status_;
};

// 1: `jobs` x `reports` through `workers` simulated workers. window 0:
// one unary ReportEpoch per report; otherwise StreamReports with at most
// `window` unacknowledged reports per worker.
Throughput RunThroughput(const std::string& address,
                         v1::ExperimentService::Stub* api, int jobs,
                         int reports, int workers, int window) {
  int64_t sweep_id = 0;
  {
    grpc::ClientContext ctx;
    v1::SubmitSweepRequest req;
    *req.mutable_spec() =
        Sweep("throughput-w" + std::to_string(window), jobs, reports);
    v1::Sweep sweep;
    grpc::Status s = api->SubmitSweep(&ctx, req, &sweep);
    if (!s.ok()) Die("submit", s);
    sweep_id = sweep.id();
  }
  Throughput t;
  const double cpu0 = CpuSeconds();
  const double coordinator_cpu0 = ProcessCpuSeconds(coordinator_pid);
  std::mutex mu;
  std::atomic<int64_t> jobs_done{0}, reports_sent{0};
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      // A channel each, as separate worker processes would have.
      grpc::ChannelArguments args;
      args.SetInt("mixcal.worker", w);  // distinct channels, not one shared
      args.SetInt("mixcal.window", window);
      SimWorker sim = RegisterSim(address, "sim", args);
      if (!sim.status.ok()) Die("register", sim.status);
      auto& stub = sim.stub;
      const v1::RegisterWorkerResponse& reg = sim.reg;
      std::vector<double> mine;
      std::vector<std::unique_ptr<StreamJob>> draining;
      while (jobs_done.load() < jobs) {
        grpc::ClientContext actx;
        v1::AcquireJobRequest ar;
        ar.set_worker_id(reg.worker_id());
        ar.set_wait_ms(200);
        v1::AcquireJobResponse a;
        auto t0 = Clock::now();
        grpc::Status s = stub->AcquireJob(&actx, ar, &a);
        if (!s.ok()) Die("acquire", s);
        if (!a.has_job()) continue;
        mine.push_back(Ms(Clock::now() - t0));
        if (window > 0) {
          // The finish rides the stream after the epochs; the stream drains
          // while the worker asks for its next job.
          auto job = std::make_unique<StreamJob>(stub.get(), a.lease(), reports,
                                                 window, &reports_sent);
          job->WaitSent();
          draining.push_back(std::move(job));
          for (auto it = draining.begin(); it != draining.end();) {
            if ((*it)->Done()) {
              (*it)->Wait();
              it = draining.erase(it);
            } else {
              ++it;
            }
          }
          jobs_done.fetch_add(1);
          continue;
        } else {
          for (int e = 1; e <= reports; ++e) {
            grpc::ClientContext ectx;
            v1::ReportEpochRequest er;
            *er.mutable_lease() = a.lease();
            *er.add_metrics() = Report(e);
            v1::ReportEpochResponse eresp;
            s = stub->ReportEpoch(&ectx, er, &eresp);
            if (!s.ok()) Die("report", s);
            reports_sent.fetch_add(1);
          }
        }
        grpc::ClientContext fctx;
        v1::FinishJobRequest fr;
        *fr.mutable_lease() = a.lease();
        fr.set_outcome(v1::SUCCEEDED);
        v1::FinishJobResponse fresp;
        s = stub->FinishJob(&fctx, fr, &fresp);
        if (!s.ok()) Die("finish", s);
        jobs_done.fetch_add(1);
      }
      for (auto& job : draining) job->Wait();
      std::lock_guard<std::mutex> lock(mu);
      t.acquire_ms.insert(t.acquire_ms.end(), mine.begin(), mine.end());
    });
  }
  for (auto& th : threads) th.join();
  t.seconds = Ms(Clock::now() - start) / 1000;
  t.cpu_seconds = CpuSeconds() - cpu0;
  t.coordinator_cpu_seconds =
      ProcessCpuSeconds(coordinator_pid) - coordinator_cpu0;
  t.sent = reports_sent.load();

  // Every report stored exactly once?
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

}  // namespace

int main(int argc, char** argv) {
  mixcal::TurnOffMutexDeadlockDetection();
  int jobs = 1000, reports = 100, workers = 32, window = 64;
  bool unary = true, dispatch = true;
  std::string external;  // a running mixcal-coordinator instead of one here
  for (int i = 1; i < argc; ++i) {
    std::string f = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : "";
    if (f == "--jobs") {
      absl::SimpleAtoi(v, &jobs);
      ++i;
    } else if (f == "--reports") {
      absl::SimpleAtoi(v, &reports);
      ++i;
    } else if (f == "--workers") {
      absl::SimpleAtoi(v, &workers);
      ++i;
    } else if (f == "--window") {
      absl::SimpleAtoi(v, &window);
      ++i;
    } else if (f == "--coordinator") {
      external = v;
      ++i;
    } else if (f == "--coordinator_pid") {
      absl::SimpleAtoi(v, &coordinator_pid);
      ++i;
    } else if (f == "--no-unary") {
      unary = false;
    } else if (f == "--no-dispatch") {
      dispatch = false;
    } else if (f == "--predictions") {
      absl::SimpleAtoi(v, &g_prediction_rows);
      ++i;
    } else {
      std::fprintf(stderr,
                   "usage: mixcal-bench-dispatch [--jobs 1000] [--reports 100] "
                   "[--workers 32] [--window 64] [--no-unary] [--no-dispatch] "
                   "[--predictions ROWS] "
                   "[--coordinator HOST:PORT [--coordinator_pid PID]]\n");
      return 2;
    }
  }
  if (window < 1) window = 1;
  // This process stands for the coordinator and the workers, and both set
  // this (base/program.h).
  mixcal::KeepFreedMemory();
  const fs::path dir = fs::temp_directory_path() /
                       ("mixcal-bench-dispatch-" + std::to_string(getpid()));
  std::unique_ptr<mixcal::server::Coordinator> coordinator;
  std::string address = external;
  if (address.empty()) {
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
    address = "127.0.0.1:" + std::to_string(coordinator->port());
  }
  auto api = v1::ExperimentService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));

  // --- 1: throughput: the report stream, and unary calls for reference ---
  Throughput streamed =
      RunThroughput(address, api.get(), jobs, reports, workers, window);
  PrintThroughput(("StreamReports, window " + std::to_string(window)).c_str(),
                  streamed, jobs, reports, workers);
  Throughput called;
  if (unary) {
    called = RunThroughput(address, api.get(), jobs, reports, workers, 0);
    PrintThroughput("ReportEpoch calls", called, jobs, reports, workers);
    std::printf(
        "mixcal: stream / unary calls: %.2fx reports/s\n",
        (streamed.sent / streamed.seconds) / (called.sent / called.seconds));
  }

  // --- 2: dispatch latency, queued -> acquired, with idle workers waiting ---
  std::vector<double> dispatch_ms;
  if (dispatch) {
    std::atomic<bool> stop{false};
    std::mutex dmu;
    std::vector<Clock::time_point> submitted;  // per sweep, in order
    std::vector<std::thread> idle;
    std::atomic<int> got{0};
    const int sweeps = 200;
    std::vector<Clock::time_point> acquired(sweeps + 1);
    for (int w = 0; w < 8; ++w) {
      idle.emplace_back([&, w] {
        grpc::ChannelArguments args;
        args.SetInt("mixcal.idle", w);
        SimWorker sim = RegisterSim(address, "idle", args);
        if (!sim.status.ok()) return;
        auto& stub = sim.stub;
        const v1::RegisterWorkerResponse& reg = sim.reg;
        while (!stop.load()) {
          grpc::ClientContext actx;
          v1::AcquireJobRequest ar;
          ar.set_worker_id(reg.worker_id());
          ar.set_wait_ms(1000);
          v1::AcquireJobResponse a;
          if (!stub->AcquireJob(&actx, ar, &a).ok() || !a.has_job()) continue;
          auto now = Clock::now();
          {
            std::lock_guard<std::mutex> lock(dmu);
            acquired[a.job().sweep_id() % (sweeps + 1)] = now;
          }
          got.fetch_add(1);
          grpc::ClientContext fctx;
          v1::FinishJobRequest fr;
          *fr.mutable_lease() = a.lease();
          fr.set_outcome(v1::SUCCEEDED);
          v1::FinishJobResponse fresp;
          stub->FinishJob(&fctx, fr, &fresp);
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
      auto t0 = Clock::now();
      grpc::Status s = api->SubmitSweep(&ctx, req, &sweep);
      if (!s.ok()) Die("submit", s);
      sent.push_back({sweep.id(), t0});
      const int want = i + 1;
      auto deadline = Clock::now() + std::chrono::seconds(5);
      while (got.load() < want && Clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    stop.store(true);
    for (auto& t : idle) t.join();
    for (const auto& [id, t0] : sent) {
      Clock::time_point t1 = acquired[id % (sweeps + 1)];
      if (t1 > t0) dispatch_ms.push_back(Ms(t1 - t0));
    }
  }
  if (dispatch) {
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
      jobs, window, static_cast<long long>(streamed.sent), streamed.seconds,
      streamed.sent / streamed.seconds, jobs / streamed.seconds,
      static_cast<long long>(streamed.stored), streamed.distinct,
      unary ? called.sent / called.seconds : 0.0,
      1e6 * streamed.cpu_seconds / streamed.sent,
      1e6 * streamed.coordinator_cpu_seconds / streamed.sent,
      Percentile(dispatch_ms, 0.5), Percentile(dispatch_ms, 0.99));
  coordinator.reset();
  if (external.empty()) fs::remove_all(dir);
  return 0;
}
