// A metric added to calib's table reaches every layer with no other code:
// the training core computes it with the table entry's own `compute`, the
// worker sends it, the store checks, stores and reads it, the summary
// averages it over seeds and the CLI prints it. All in this process: the
// coordinator (real gRPC on 127.0.0.1, real SQLite), the worker agent with
// the real LibTorch trainer on tiny synthetic data, and `mixcal` through
// RunCli.

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "calib/metric_table.h"
#include "calib/predictions.h"
#include "client/cli.h"
#include "gtest/gtest.h"
#include "server/coordinator.h"
#include "storage/store.h"
#include "tests/scratch_dir.h"
#include "worker/agent.h"

namespace mixcal {
namespace {

namespace fs = std::filesystem;

// The share of examples the network gets wrong at confidence 0.5 or more.
double WrongConfident(const calib::SplitExamples& e) {
  int64_t wrong = 0;
  for (size_t i = 0; i < e.confidence.size(); ++i)
    wrong += e.confidence[i] >= 0.5f && e.correct[i] == 0;
  return e.confidence.empty()
             ? 0.0
             : static_cast<double>(wrong) / e.confidence.size();
}

// Added before main, as a lab's own build would add it.
const bool kRegistered = [] {
  calib::Metric m{"wrong_confident",
                  false,
                  true,
                  true,
                  "share of examples wrong at confidence >= 0.5",
                  0,
                  1};
  m.compute = WrongConfident;
  const absl::Status s = calib::RegisterMetric(std::move(m));
  if (!s.ok()) std::abort();
  return true;
}();

struct Cli {
  int code = -1;
  std::string out, err;
};

Cli Mixcal(const std::string& line) {
  std::vector<std::string> args = absl::StrSplit(line, ' ', absl::SkipEmpty());
  std::ostringstream out, err;
  Cli r;
  r.code = client::RunCli(args, out, err, /*out_is_terminal=*/false);
  r.out = out.str();
  r.err = err.str();
  return r;
}

TEST(AddedMetricTest, OneTableEntryWithItsComputationReachesEveryLayer) {
  ASSERT_TRUE(kRegistered);
  const fs::path dir = testing::FreshTestDir("added_metric");
  server::CoordinatorOptions o;
  o.listen = "127.0.0.1:0";
  o.db_path = (dir / "mixcal.db").string();
  auto coordinator = server::Coordinator::Start(o);
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  const std::string address =
      absl::StrCat("127.0.0.1:", (*coordinator)->port());

  const std::string spec = (dir / "spec.json").string();
  std::ofstream(spec) << R"({
    "name": "added-metric",
    "data": {"dataset": "synthetic",
             "synthetic": {"classes": 4, "size": 4, "trainCount": 512,
                           "testCount": 256, "separation": 1.0}},
    "model": "mlp",
    "training": {"epochs": 2, "batchSize": 64, "lr": 0.05},
    "methods": [{"name": "baseline"}],
    "seeds": [0, 1],
    "evaluation": {"predictions": "final"}
  })";
  Cli submit = Mixcal(absl::StrCat("submit ", spec, " --address ", address));
  ASSERT_EQ(submit.code, 0) << submit.out << submit.err;

  worker::AgentOptions a;
  a.address = address;
  a.threads = 1;
  a.checkpoint_dir = (dir / "checkpoints").string();
  a.max_jobs = 2;
  ASSERT_TRUE(worker::RunAgent(a).ok());

  // Stored per epoch and split, and read back as the CLI's column.
  Cli metrics = Mixcal(
      absl::StrCat("metrics 1 --split test --format csv --address ", address));
  ASSERT_EQ(metrics.code, 0) << metrics.err;
  std::vector<std::string> lines =
      absl::StrSplit(metrics.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 1u + 2 * 2) << metrics.out;  // header, 2 jobs x 2
  const std::vector<std::string> header = absl::StrSplit(lines[0], ',');
  const auto column =
      std::find(header.begin(), header.end(), "wrong_confident");
  ASSERT_NE(column, header.end()) << lines[0];
  const size_t c = static_cast<size_t>(column - header.begin());
  // The identity columns by name (the CSV begins sweep_id, job_id, ...).
  auto index_of = [&](const char* name) {
    return static_cast<size_t>(
        std::find(header.begin(), header.end(), name) - header.begin());
  };
  const size_t job_c = index_of("job_id"), epoch_c = index_of("epoch");
  ASSERT_LT(job_c, header.size());
  ASSERT_LT(epoch_c, header.size());

  // Each job's final epoch: the stored value is the share recomputed from
  // its kept test probabilities (float16, so within a few examples).
  storage::StoreOptions so;
  so.path = o.db_path;
  auto store = storage::Store::Open(so);
  ASSERT_TRUE(store.ok()) << store.status();
  int checked = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::vector<std::string> row = absl::StrSplit(lines[i], ',');
    ASSERT_EQ(row.size(), header.size()) << lines[i];
    double stored = -1;
    ASSERT_TRUE(absl::SimpleAtod(row[c], &stored)) << lines[i];
    EXPECT_GE(stored, 0.0);
    EXPECT_LE(stored, 1.0);
    if (row[epoch_c] != "2") continue;
    int64_t job = 0;
    ASSERT_TRUE(absl::SimpleAtoi(row[job_c], &job));
    auto kept = (*store)->metrics().GetPredictions(job, 2, "test");
    ASSERT_TRUE(kept.ok()) << kept.status();
    auto probs = calib::DecodeProbabilities(kept->probabilities(),
                                            kept->count(), kept->classes());
    auto labels = calib::DecodeLabels(kept->labels(), kept->count(),
                                      static_cast<int>(kept->classes()));
    ASSERT_TRUE(probs.ok() && labels.ok());
    int64_t wrong = 0;
    for (uint32_t e = 0; e < kept->count(); ++e) {
      const float* p = probs->data() + static_cast<size_t>(e) * kept->classes();
      const auto top = std::max_element(p, p + kept->classes()) - p;
      wrong += *std::max_element(p, p + kept->classes()) >= 0.5f &&
               top != (*labels)[e];
    }
    EXPECT_NEAR(stored, static_cast<double>(wrong) / kept->count(),
                3.0 / kept->count())
        << "job " << job;
    ++checked;
  }
  EXPECT_EQ(checked, 2);

  // Averaged over seeds in the summary, as every summarized metric is.
  Cli summary =
      Mixcal(absl::StrCat("summary 1 --format csv --address ", address));
  ASSERT_EQ(summary.code, 0) << summary.err;
  EXPECT_NE(summary.out.find("baseline,0,test,2,wrong_confident,"),
            std::string::npos)
      << summary.out;
  store->reset();
  coordinator->reset();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mixcal
