// The store's speed on a real SQLite file (WAL, synchronous=NORMAL):
//   1. epoch reports ingested per second, 15 bins each, one writer;
//   2. SummarizeSweep latency over 10,000 jobs x 100 epochs (1,000,000 epoch
//      rows, each with its 15 bins);
//   2b, 2c. ingest from 32 concurrent writers (a transaction each), and in
//   batches
//      of 128 as the coordinator's report streams hand them over;
//   2d. an online backup of that store (storage/backup.h) while a writer
//       keeps storing reports: its time, and the writes' latency during it
//       against just before;
//   3. next-job selection (AcquireJob) with 10,000 queued jobs in 100 sweeps.
//
//   mixcal-bench-store [--dir DIR] [--jobs 10000] [--epochs 100]
//   (--jobs 0 skips 1 and 2)
// Writes about 1 GB under DIR (default /tmp) and removes it afterwards.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "storage/backup.h"
#include "storage/store.h"

namespace {

using mixcal::storage::Store;
using mixcal::storage::StoreOptions;
namespace v1 = mixcal::v1;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since)
      .count();
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

void Check(const absl::Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "mixcal-bench-store: %s: %s\n", what,
                 s.ToString().c_str());
    std::exit(1);
  }
}

std::unique_ptr<Store> Open(const std::string& path) {
  StoreOptions o;
  o.path = path;
  auto s = Store::Open(o);
  Check(s.status(), "open");
  return std::move(*s);
}

// A CPU worker to lease jobs to.
int64_t BenchWorker(Store& store) {
  v1::WorkerInfo w;
  w.set_host("bench");
  w.set_device("cpu");
  absl::StatusOr<int64_t> id = store.queue().RegisterWorker(w);
  Check(id.status(), "register worker");
  return *id;
}

v1::SweepSpec SweepOf(const std::string& name, int values, int seeds) {
  v1::SweepSpec s;
  s.set_name(name);
  s.mutable_data()->set_dataset("synthetic");
  s.set_model("mlp");
  s.mutable_training()->set_epochs(100);
  v1::MethodSpec* m = s.add_methods();
  m->set_name("mixup");
  for (int i = 0; i < values; ++i) m->add_values(0.1 * (i + 1));
  for (int i = 0; i < seeds; ++i) s.add_seeds(i);
  return s;
}

v1::EpochMetrics Report(uint32_t epoch, int64_t job) {
  v1::EpochMetrics m;
  m.set_epoch(epoch);
  m.set_split("test");
  m.set_count(9105);  // what the bins below add up to
  double x = 0.001 * ((job * 7919 + epoch * 104729) % 1000);
  m.set_accuracy(0.8 + 0.1 * x);
  m.set_nll(0.3 + x);
  m.set_brier(0.2 + x);
  m.set_ece(0.01 + 0.05 * x);
  m.set_mce(0.1 + 0.5 * x);
  m.set_oe(0.005 * x);
  m.set_adaptive_ece(0.01 + 0.04 * x);
  m.set_mean_confidence(0.85);
  m.set_mean_entropy(0.4);
  m.set_train_loss(0.5);
  m.set_lr(0.05);
  m.set_samples_per_sec(30000);
  for (int b = 0; b < 15; ++b) {
    v1::ReliabilityBin* bin = m.add_bins();
    bin->set_count(600 + b);
    bin->set_confidence_sum((600 + b) * (b + 0.5) / 15);
    bin->set_correct(500 + b);
  }
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "/tmp";
  int jobs = 10000, epochs = 100;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string f = argv[i];
    if (f == "--dir")
      dir = argv[i + 1];
    else if (f == "--jobs")
      absl::SimpleAtoi(argv[i + 1], &jobs);
    else if (f == "--epochs")
      absl::SimpleAtoi(argv[i + 1], &epochs);
  }
  const fs::path root =
      fs::path(dir) / ("mixcal-bench-store-" + std::to_string(::getpid()));
  fs::create_directories(root);

  // --- 1 and 2: one sweep of `jobs` jobs, `epochs` epochs each ---
  if (jobs > 0) {
    auto store = Open((root / "summary.db").string());
    const int values = 10, seeds = jobs / values;
    auto sweep = store->sweeps().CreateSweep(SweepOf("summary", values, seeds));
    Check(sweep.status(), "create sweep");
    const int64_t worker = BenchWorker(*store);
    std::vector<v1::Lease> leases;
    for (int j = 0; j < jobs; ++j) {
      auto a = store->queue().AcquireJob(worker, int64_t{1} << 40);
      Check(a.status(), "acquire");
      leases.push_back((*a)->lease);
    }
    std::printf(
        "store: %d jobs x %d epochs, one 'test' split with 15 bins per "
        "report\n",
        jobs, epochs);
    auto start = Clock::now();
    int64_t reports = 0;
    double first_rate = 0;
    for (int e = 1; e <= epochs; ++e) {
      for (const v1::Lease& l : leases) {
        Check(store->reports().ReportEpoch(l, {Report(e, l.job_id())}), "report");
        ++reports;
      }
      if (e == 1) first_rate = reports / (Ms(start) / 1000);
      if (e % 20 == 0) {
        std::printf("  %lld reports stored, %.0f reports/s so far\n",
                    static_cast<long long>(reports),
                    reports / (Ms(start) / 1000));
        std::fflush(stdout);
      }
    }
    const double seconds = Ms(start) / 1000;
    std::printf(
        "ingest: %.0f epoch reports/s (15 bins each, single writer); %.0f/s "
        "into an empty "
        "store, %.0f/s overall up to %lld rows\n",
        reports / seconds, first_rate, reports / seconds,
        static_cast<long long>(reports));
    std::printf("file: %.0f MB database, %.0f MB write-ahead log\n",
                fs::file_size(root / "summary.db") / 1e6,
                (fs::exists(root / "summary.db-wal")
                     ? fs::file_size(root / "summary.db-wal")
                     : 0) /
                    1e6);

    auto time_summary = [&](const v1::SummaryPoint& at, const char* label) {
      std::vector<double> ms;
      size_t groups = 0;
      for (int i = 0; i < 21; ++i) {
        auto t = Clock::now();
        auto rows = store->metrics().SummarizeSweep(sweep->id(), at, "test");
        ms.push_back(Ms(t));
        Check(rows.status(), "summary");
        groups = rows->size();
      }
      std::printf(
          "summary %-14s median %7.1f ms  p90 %7.1f ms  (%zu groups of %d "
          "seeds)\n",
          label, Percentile(ms, 0.5), Percentile(ms, 0.9), groups, seeds);
    };
    v1::SummaryPoint final_point, epoch_point, best_point;
    final_point.set_final(true);
    epoch_point.set_epoch(epochs / 2);
    best_point.set_best_by("ece");
    best_point.set_best_split("test");  // its rows have no validation split
    time_summary(final_point, "at final");
    time_summary(epoch_point, "at epoch N/2");
    time_summary(best_point, "best by ece");

    // --- 2d: an online backup of this store while a writer keeps storing
    // reports: the backup's time and size, and each write's latency during
    // it against the same writer's in the seconds just before (reference).
    // 1,000 jobs x 100 epochs: more than the writer stores in the test.
    auto more = store->sweeps().CreateSweep(SweepOf("during-backup", 10, 100));
    Check(more.status(), "create sweep");
    std::vector<v1::Lease> writing;
    for (int j = 0; j < 1000; ++j) {
      auto a = store->queue().AcquireJob(worker, int64_t{1} << 40);
      Check(a.status(), "acquire");
      writing.push_back((*a)->lease);
    }
    std::atomic<int> phase{0};  // 0 reference, 1 backup, 2 stop
    std::vector<double> before_ms, during_ms;
    std::thread writer([&] {
      for (int e = 1; e <= 100 && phase.load() < 2; ++e) {
        for (const v1::Lease& l : writing) {
          if (phase.load() >= 2) break;
          const int now = phase.load();
          auto t = Clock::now();
          Check(store->reports().ReportEpoch(l, {Report(e, l.job_id())}),
                "report during backup");
          (now == 0 ? before_ms : during_ms).push_back(Ms(t));
        }
      }
    });
    std::this_thread::sleep_for(std::chrono::seconds(2));
    phase = 1;
    auto b = mixcal::storage::WriteBackup((root / "summary.db").string(),
                                          (root / "backups").string(), 1);
    phase = 2;
    writer.join();
    Check(b.status(), "backup");
    auto stats = [](std::vector<double> v, double seconds) {
      if (v.empty()) return std::string("no writes");
      char buf[160];
      std::snprintf(buf, sizeof buf,
                    "%zu writes (%.0f/s), median %.3f ms, p99 %.3f ms, max "
                    "%.1f ms",
                    v.size(), v.size() / seconds, Percentile(v, 0.5),
                    Percentile(v, 0.99), *std::max_element(v.begin(), v.end()));
      return std::string(buf);
    };
    std::printf(
        "backup of %lld rows: %.1f s, database copy %.0f MB (%.0f MB/s)\n",
        static_cast<long long>(reports), b->seconds, b->database_bytes / 1e6,
        b->database_bytes / 1e6 / b->seconds);
    std::printf("  writes before it (reference, 2 s): %s\n",
                stats(before_ms, 2).c_str());
    std::printf("  writes during it:                  %s\n",
                stats(during_ms, b->seconds).c_str());
    if (!before_ms.empty() && !during_ms.empty()) {
      std::printf(
          "  during / before: throughput %.2fx, median latency %.2fx, "
          "p99 %.2fx\n",
          (during_ms.size() / b->seconds) / (before_ms.size() / 2.0),
          Percentile(during_ms, 0.5) / Percentile(before_ms, 0.5),
          Percentile(during_ms, 0.99) / Percentile(before_ms, 0.99));
    }
  }

  // --- 2b: the same reports from 32 concurrent writers, a transaction each ---
  {
    auto store = Open((root / "group.db").string());
    const int writers = 32, per_writer_jobs = 8, per_job = 100;
    auto sweep =
        store->sweeps().CreateSweep(SweepOf("group", 1, writers * per_writer_jobs));
    Check(sweep.status(), "create sweep");
    const int64_t worker = BenchWorker(*store);
    std::vector<v1::Lease> leases;
    for (int j = 0; j < writers * per_writer_jobs; ++j)
      leases.push_back((*store->queue().AcquireJob(worker, int64_t{1} << 40))->lease);
    auto start = Clock::now();
    std::vector<std::thread> threads;
    for (int t = 0; t < writers; ++t) {
      threads.emplace_back([&, t] {
        for (int j = 0; j < per_writer_jobs; ++j) {
          const v1::Lease& l = leases[t * per_writer_jobs + j];
          for (int e = 1; e <= per_job; ++e)
            Check(store->reports().ReportEpoch(l, {Report(e, l.job_id())}), "report");
        }
      });
    }
    for (auto& th : threads) th.join();
    const double seconds = Ms(start) / 1000;
    const double n = static_cast<double>(writers) * per_writer_jobs * per_job;
    std::printf(
        "ingest, %d concurrent writers, a transaction each: %.0f epoch "
        "reports/s "
        "(%.0f reports)\n",
        writers, n / seconds, n);
  }

  // --- 2c: batches as the coordinator's report writer hands them over ---
  {
    auto store = Open((root / "batch.db").string());
    const int jobs_at_once = 32, rounds = 8, per_job = 100, batch = 128;
    auto sweep = store->sweeps().CreateSweep(SweepOf("batch", 1, jobs_at_once * rounds));
    Check(sweep.status(), "create sweep");
    const int64_t worker = BenchWorker(*store);
    // 32 jobs at a time, their epochs interleaved, as 32 workers send them.
    std::vector<v1::WorkerReport> reports;
    for (int r = 0; r < rounds; ++r) {
      std::vector<v1::Lease> leases;
      for (int j = 0; j < jobs_at_once; ++j)
        leases.push_back((*store->queue().AcquireJob(worker, int64_t{1} << 40))->lease);
      for (int e = 1; e <= per_job; ++e) {
        for (const v1::Lease& l : leases) {
          v1::ReportEpochRequest* req = reports.emplace_back().mutable_epoch();
          *req->mutable_lease() = l;
          *req->add_metrics() = Report(e, l.job_id());
        }
      }
    }
    auto start = Clock::now();
    for (size_t i = 0; i < reports.size(); i += batch) {
      std::vector<const v1::WorkerReport*> part;
      for (size_t k = i; k < std::min(reports.size(), i + batch); ++k)
        part.push_back(&reports[k]);
      for (const mixcal::storage::ReportResult& r : store->reports().StoreReports(part))
        Check(r.status, "report");
    }
    const double seconds = Ms(start) / 1000;
    std::printf(
        "ingest, batches of %d (StoreReports, as the report streams store "
        "them): "
        "%.0f epoch reports/s, %.1f us each (%zu reports)\n",
        batch, reports.size() / seconds, 1e6 * seconds / reports.size(),
        reports.size());
  }

  // --- 3: next-job selection, 10,000 queued jobs across 100 sweeps ---
  {
    auto store = Open((root / "queue.db").string());
    for (int s = 0; s < 100; ++s) {
      Check(store->sweeps().CreateSweep(SweepOf("queue-" + std::to_string(s), 10, 10))
                .status(),
            "create");
    }
    const int64_t worker = BenchWorker(*store);
    std::vector<double> ms;
    for (int i = 0; i < 2000; ++i) {
      auto t = Clock::now();
      auto a = store->queue().AcquireJob(worker, int64_t{1} << 40);
      ms.push_back(Ms(t));
      Check(a.status(), "acquire");
      if (!a->has_value()) break;
    }
    std::printf(
        "next job (AcquireJob, 10000 -> 8000 queued in 100 sweeps): median "
        "%.3f ms  p99 "
        "%.3f ms  max %.3f ms\n",
        Percentile(ms, 0.5), Percentile(ms, 0.99), Percentile(ms, 1.0));
  }
  if (std::getenv("MIXCAL_BENCH_KEEP") == nullptr) fs::remove_all(root);
  return 0;
}
