// The coordinator under load from simulated workers that speak the real
// protocol over 127.0.0.1 but do not train:
//   1. 1,000 jobs x 100 epoch reports (15 bins each) through 32 concurrent
//      workers: jobs/s, reports/s, AcquireJob round trip, and a check that
//      every report was stored exactly once;
//   2. dispatch latency: idle workers long-polling, single-job sweeps
//      submitted one at a time; from submit to the worker holding the job.
// Prints one JSON line at the end for bench/dispatch_bench.sh.
//
//   mixcal-bench-dispatch [--jobs 1000] [--reports 100] [--workers 32]

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "grpcpp/grpcpp.h"
#include "mixcal/v1/experiment.grpc.pb.h"
#include "mixcal/v1/worker.grpc.pb.h"
#include "server/coordinator.h"

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
  m.set_count(10000);
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

}  // namespace

int main(int argc, char** argv) {
  int jobs = 1000, reports = 100, workers = 32;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string f = argv[i];
    if (f == "--jobs")
      absl::SimpleAtoi(argv[i + 1], &jobs);
    else if (f == "--reports")
      absl::SimpleAtoi(argv[i + 1], &reports);
    else if (f == "--workers")
      absl::SimpleAtoi(argv[i + 1], &workers);
  }
  const fs::path dir = fs::temp_directory_path() /
                       ("mixcal-bench-dispatch-" + std::to_string(getpid()));
  fs::create_directories(dir);
  mixcal::server::CoordinatorOptions o;
  o.listen = "127.0.0.1:0";
  o.db_path = (dir / "mixcal.db").string();
  auto coordinator = mixcal::server::Coordinator::Start(o);
  if (!coordinator.ok()) {
    std::fprintf(stderr, "%s\n", coordinator.status().ToString().c_str());
    return 1;
  }
  const std::string address =
      "127.0.0.1:" + std::to_string((*coordinator)->port());
  auto api = v1::ExperimentService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));

  // --- 1: throughput ---
  {
    grpc::ClientContext ctx;
    v1::SubmitSweepRequest req;
    *req.mutable_spec() = Sweep("throughput", jobs, reports);
    v1::Sweep sweep;
    grpc::Status s = api->SubmitSweep(&ctx, req, &sweep);
    if (!s.ok()) Die("submit", s);
  }
  std::mutex mu;
  std::vector<double> acquire_ms;
  std::atomic<int64_t> jobs_done{0}, reports_sent{0};
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      // A channel each, as separate worker processes would have.
      grpc::ChannelArguments args;
      args.SetInt("mixcal.worker",
                  w);  // distinct channels, not one shared subchannel
      auto stub = v1::WorkerService::NewStub(grpc::CreateCustomChannel(
          address, grpc::InsecureChannelCredentials(), args));
      grpc::ClientContext rctx;
      v1::RegisterWorkerRequest rr;
      rr.set_host("sim");
      rr.set_device("cpu");
      v1::RegisterWorkerResponse reg;
      grpc::Status s = stub->RegisterWorker(&rctx, rr, &reg);
      if (!s.ok()) Die("register", s);
      std::vector<double> mine;
      while (jobs_done.load() < jobs) {
        grpc::ClientContext actx;
        v1::AcquireJobRequest ar;
        ar.set_worker_id(reg.worker_id());
        ar.set_wait_ms(200);
        v1::AcquireJobResponse a;
        auto t0 = Clock::now();
        s = stub->AcquireJob(&actx, ar, &a);
        if (!s.ok()) Die("acquire", s);
        if (!a.has_job()) continue;
        mine.push_back(Ms(Clock::now() - t0));
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
        grpc::ClientContext fctx;
        v1::FinishJobRequest fr;
        *fr.mutable_lease() = a.lease();
        fr.set_outcome(v1::SUCCEEDED);
        v1::FinishJobResponse fresp;
        s = stub->FinishJob(&fctx, fr, &fresp);
        if (!s.ok()) Die("finish", s);
        jobs_done.fetch_add(1);
      }
      std::lock_guard<std::mutex> lock(mu);
      acquire_ms.insert(acquire_ms.end(), mine.begin(), mine.end());
    });
  }
  for (auto& t : threads) t.join();
  const double seconds = Ms(Clock::now() - start) / 1000;

  // Every report stored exactly once?
  int64_t stored = 0;
  std::set<std::pair<int64_t, uint32_t>> keys;
  v1::QueryMetricsRequest q;
  q.mutable_filter()->set_page_size(10000);
  do {
    grpc::ClientContext ctx;
    v1::QueryMetricsResponse r;
    grpc::Status s = api->QueryMetrics(&ctx, q, &r);
    if (!s.ok()) Die("query", s);
    for (const auto& row : r.rows()) keys.insert({row.job_id(), row.epoch()});
    stored += r.rows_size();
    q.mutable_filter()->set_page_token(r.next_page_token());
  } while (!q.filter().page_token().empty());

  std::printf(
      "mixcal: %d jobs x %d reports through %d workers in %.2f s: %.1f jobs/s, "
      "%.0f reports/s\n",
      jobs, reports, workers, seconds, jobs / seconds,
      reports_sent.load() / seconds);
  std::printf(
      "mixcal: reports sent %lld, rows stored %lld, distinct (job, epoch) "
      "%zu\n",
      static_cast<long long>(reports_sent.load()),
      static_cast<long long>(stored), keys.size());
  std::printf(
      "mixcal: AcquireJob round trip under load: median %.2f ms, p99 %.2f ms\n",
      Percentile(acquire_ms, 0.5), Percentile(acquire_ms, 0.99));

  // --- 2: dispatch latency, queued -> acquired, with idle workers waiting ---
  std::vector<double> dispatch_ms;
  {
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
        auto stub = v1::WorkerService::NewStub(grpc::CreateCustomChannel(
            address, grpc::InsecureChannelCredentials(), args));
        grpc::ClientContext rctx;
        v1::RegisterWorkerRequest rr;
        rr.set_host("idle");
        rr.set_device("cpu");
        v1::RegisterWorkerResponse reg;
        if (!stub->RegisterWorker(&rctx, rr, &reg).ok()) return;
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
  std::printf(
      "mixcal: dispatch latency, submit -> acquired by an idle worker (%zu "
      "jobs): median "
      "%.2f ms, p99 %.2f ms\n",
      dispatch_ms.size(), Percentile(dispatch_ms, 0.5),
      Percentile(dispatch_ms, 0.99));
  std::printf(
      "{\"jobs\":%d,\"reports\":%lld,\"seconds\":%.4f,\"reports_per_sec\":%.1f,"
      "\"jobs_per_sec\":%.2f,\"stored\":%lld,\"distinct\":%zu,\"dispatch_p50_"
      "ms\":%.3f,"
      "\"dispatch_p99_ms\":%.3f}\n",
      jobs, static_cast<long long>(reports_sent.load()), seconds,
      reports_sent.load() / seconds, jobs / seconds,
      static_cast<long long>(stored), keys.size(), Percentile(dispatch_ms, 0.5),
      Percentile(dispatch_ms, 0.99));
  coordinator->reset();
  fs::remove_all(dir);
  return 0;
}
