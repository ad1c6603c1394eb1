// client/python/metrics_to_pandas.py against a real coordinator and worker:
// Debian's python3-grpcio and pandas, stubs from the system protoc.

#include <sys/wait.h>

#include <cstdio>
#include <map>
#include <string>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "tests/e2e/harness.h"

namespace mixcal::testing {
namespace {

// Submits `spec` and waits for it to succeed; its sweep.
v1::Sweep RunSweep(Cluster& c, const v1::SweepSpec& spec) {
  grpc::ClientContext ctx;
  v1::SubmitSweepRequest req;
  *req.mutable_spec() = spec;
  v1::Sweep sweep;
  EXPECT_TRUE(c.api().SubmitSweep(&ctx, req, &sweep).ok());
  EXPECT_TRUE(WaitFor(
      [&] { return c.GetSweep(sweep.id()).state() == v1::SWEEP_SUCCEEDED; },
      120));
  return sweep;
}

// The shell command that runs client/python/`script` with `args` against
// the cluster's coordinator (Debian's Python, the stubs built here).
std::string PythonCommand(const Cluster& c, const std::string& script,
                          const std::string& args) {
  return std::string("MIXCAL_PYTHON_STUBS=") + MIXCAL_PYTHON_STUBS +
         " /usr/bin/python3 " + MIXCAL_SOURCE_DIR + "/client/python/" + script +
         " " + args + " --address 127.0.0.1:" + std::to_string(c.port());
}

// Runs a shell command; its output and exit status.
std::pair<std::string, int> RunShell(const std::string& cmd) {
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  return {out, pclose(p)};
}

TEST(PythonClientTest, LoadsASweepIntoPandasAndAgreesWithTheSummary) {
  Cluster c("python");
  ASSERT_TRUE(c.StartCoordinator());
  c.StartWorker();
  const v1::Sweep sweep = RunSweep(c, TinySweep("python", 2, 2));
  ASSERT_FALSE(::testing::Test::HasFailure());

  const std::string cmd =
      PythonCommand(c, "metrics_to_pandas.py",
                    "--sweep " + std::to_string(sweep.id())) +
      " 2>&1";
  const auto [out, status] = RunShell(cmd);
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("rows 8, jobs 4, epochs 2"), std::string::npos) << out;

  grpc::ClientContext sctx;
  v1::SummarizeSweepRequest sreq;
  sreq.set_sweep_id(sweep.id());
  sreq.mutable_at()->set_final(true);
  sreq.set_split("test");
  v1::SummarizeSweepResponse summary;
  ASSERT_TRUE(c.api().SummarizeSweep(&sctx, sreq, &summary).ok());
  std::map<std::string, double> expected;
  for (const auto& row : summary.rows())
    for (const auto& s : row.stats())
      if (s.metric() == "ece") expected[row.method()] = s.mean();
  int matched = 0;
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    std::vector<std::string> cells = absl::StrSplit(line, ',');
    double ece;
    if (cells.size() != 5 || !expected.count(cells[0]) ||
        !absl::SimpleAtod(cells[2], &ece))
      continue;
    EXPECT_NEAR(ece, expected[cells[0]], 1e-8) << line;
    ++matched;
  }
  EXPECT_EQ(matched, 2) << out;

  // A sweep that does not exist is an error, not an empty table.
  const std::string missing =
      PythonCommand(c, "metrics_to_pandas.py", "--sweep 999") +
      " >/dev/null 2>&1";
  EXPECT_NE(std::system(missing.c_str()), 0);
}

TEST(PythonClientTest, KeptPredictionsLoadIntoNumPyAndMatchTheStoredMetrics) {
  // A real worker keeps the final epoch's test probabilities; NumPy's
  // accuracy and ECE from them agree with what the worker reported.
  Cluster c("python_predictions");
  ASSERT_TRUE(c.StartCoordinator());
  c.StartWorker();
  const v1::Sweep sweep = RunSweep(c, TinySweep("python-predictions", 2, 1));
  ASSERT_FALSE(::testing::Test::HasFailure());
  const int64_t job = sweep.job_ids(0);
  const std::string cmd =
      PythonCommand(c, "predictions_to_numpy.py",
                    "--job " + std::to_string(job)) +
      " 2>&1";
  const auto [out, status] = RunShell(cmd);
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("epoch 2, split test: 512 examples x 4 classes"),
            std::string::npos)
      << out;
  double accuracy = -1, ece = -1, nll = -1;
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    std::vector<std::string> w = absl::StrSplit(line, absl::ByAnyChar(" ,"),
                                                absl::SkipEmpty());
    if (w.size() == 4 && w[0] == "accuracy") {
      ASSERT_TRUE(absl::SimpleAtod(w[1], &accuracy) && absl::SimpleAtod(w[3], &ece));
    }
    if (w.size() == 2 && w[0] == "nll") ASSERT_TRUE(absl::SimpleAtod(w[1], &nll));
  }
  std::vector<v1::EpochMetrics> rows = c.Metrics(sweep.id(), "test");
  const v1::EpochMetrics* last = nullptr;
  for (const auto& r : rows)
    if (r.job_id() == job && r.epoch() == 2) last = &r;
  ASSERT_NE(last, nullptr);
  // float16 rounding moves a few confidences across bin edges and can tie
  // the argmax: close, not equal.
  EXPECT_NEAR(accuracy, last->accuracy(), 4.0 / 512) << out;
  EXPECT_NEAR(ece, last->ece(), 5e-3) << out;
  // NLL from the kept float32 log-probabilities: what the worker computed.
  EXPECT_NEAR(nll, last->nll(), 1e-3) << out;
}

}  // namespace
}  // namespace mixcal::testing
