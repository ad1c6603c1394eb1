// client/python/metrics_to_pandas.py against a real coordinator and worker:
// Debian's python3-grpcio and pandas, stubs from the system protoc.

#include <sys/wait.h>

#include <cstdio>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/e2e/harness.h"

namespace mixcal::testing {
namespace {

TEST(PythonClientTest, LoadsASweepIntoPandasAndAgreesWithTheSummary) {
  Cluster c("python");
  ASSERT_TRUE(c.StartCoordinator());
  c.StartWorker();
  grpc::ClientContext ctx;
  v1::SubmitSweepRequest req;
  *req.mutable_spec() = TinySweep("python", 2, 2);
  v1::Sweep sweep;
  ASSERT_TRUE(c.api().SubmitSweep(&ctx, req, &sweep).ok());
  ASSERT_TRUE(WaitFor(
      [&] { return c.GetSweep(sweep.id()).state() == v1::SWEEP_SUCCEEDED; },
      120));

  const std::string cmd =
      std::string("MIXCAL_PYTHON_STUBS=") + MIXCAL_PYTHON_STUBS +
      " /usr/bin/python3 " + MIXCAL_SOURCE_DIR +
      "/client/python/metrics_to_pandas.py" + " --sweep " +
      std::to_string(sweep.id()) +
      " --address 127.0.0.1:" + std::to_string(c.port()) + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ASSERT_EQ(pclose(p), 0) << out;
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
      std::string("MIXCAL_PYTHON_STUBS=") + MIXCAL_PYTHON_STUBS +
      " /usr/bin/python3 " + MIXCAL_SOURCE_DIR +
      "/client/python/metrics_to_pandas.py --sweep 999 --address " +
      "127.0.0.1:" + std::to_string(c.port()) + " >/dev/null 2>&1";
  EXPECT_NE(std::system(missing.c_str()), 0);
}

}  // namespace
}  // namespace mixcal::testing
