// The mixcal CLI as a user runs it, against a real coordinator and worker.

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <future>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/e2e/harness.h"

namespace mixcal::testing {
namespace {

struct Result {
  int code = -1;
  std::string out, err;
};

Result Mixcal(const std::string& args, int port) {
  const std::string err_file =
      "/tmp/mixcal_cli_test_err_" + std::to_string(getpid());
  std::string cmd = "MIXCAL_ADDRESS=127.0.0.1:" + std::to_string(port) + " " +
                    MIXCAL_BIN + " " + args + " 2>" + err_file;
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = Slurp(err_file);
  std::remove(err_file.c_str());
  return r;
}

TEST(CliEndToEndTest, SubmitWaitSummaryAndMetricsMatchTheStore) {
  Cluster c("cli");
  ASSERT_TRUE(c.StartCoordinator());
  c.StartWorker();
  Result submit = Mixcal(
      "submit --name cli --dataset synthetic --model mlp --methods "
      "baseline,mixup:0.4 --seeds 2 "
      "--epochs 2 --device cpu --wait",
      c.port());
  ASSERT_EQ(submit.code, 0) << submit.out << submit.err;
  EXPECT_NE(submit.out.find("sweep 1 submitted: 4 jobs"), std::string::npos)
      << submit.out;
  EXPECT_NE(submit.out.find("sweep 1 succeeded"), std::string::npos)
      << submit.out;
  EXPECT_NE(submit.out.find("mixup 0.4"), std::string::npos) << submit.out;
  EXPECT_NE(submit.out.find("ECE (TS)"), std::string::npos) << submit.out;

  // CSV, parsed back, against the stored rows.
  Result csv = Mixcal("metrics 1 --split test --format csv", c.port());
  ASSERT_EQ(csv.code, 0) << csv.err;
  std::vector<std::string> lines =
      absl::StrSplit(csv.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 1u + 4 * 2);  // header + 4 jobs x 2 epochs
  std::vector<std::string> header = absl::StrSplit(lines[0], ',');
  const size_t ece_col =
      std::find(header.begin(), header.end(), "ece") - header.begin();
  const size_t job_col =
      std::find(header.begin(), header.end(), "job_id") - header.begin();
  const size_t epoch_col =
      std::find(header.begin(), header.end(), "epoch") - header.begin();
  ASSERT_LT(ece_col, header.size());
  std::map<std::pair<int64_t, uint32_t>, double> stored;
  for (const auto& m : c.Metrics(1, "test"))
    stored[{m.job_id(), m.epoch()}] = m.ece();
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> cells = absl::StrSplit(lines[i], ',');
    int64_t job;
    uint32_t epoch;
    double ece;
    ASSERT_TRUE(absl::SimpleAtoi(cells[job_col], &job) &&
                absl::SimpleAtoi(cells[epoch_col], &epoch) &&
                absl::SimpleAtod(cells[ece_col], &ece))
        << lines[i];
    EXPECT_NEAR(ece, stored.at({job, epoch}), 1e-8) << lines[i];
  }

  // JSON, parsed back.
  Result json = Mixcal("metrics 1 --split test --format json", c.port());
  ASSERT_EQ(json.code, 0) << json.err;
  ASSERT_EQ(json.out.front(), '[');
  std::string wrapped = "{\"rows\":" + json.out + "}";
  v1::QueryMetricsResponse parsed;
  auto st = google::protobuf::util::JsonStringToMessage(wrapped, &parsed);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(parsed.rows_size(), 8);
  for (const auto& m : parsed.rows())
    EXPECT_NEAR(m.ece(), stored.at({m.job_id(), m.epoch()}), 1e-12);

  Result summary = Mixcal("summary 1 --at epoch:1 --format json", c.port());
  ASSERT_EQ(summary.code, 0) << summary.err;
  v1::SummarizeSweepResponse rows;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(
                  "{\"rows\":" + summary.out + "}", &rows)
                  .ok());
  // 2 methods x (test, test_ts, val, val_ts)
  EXPECT_EQ(rows.rows_size(), 8);
  // The best epoch chosen on validation data, as each row says.
  summary = Mixcal("summary 1 --at best:ece --format json", c.port());
  ASSERT_EQ(summary.code, 0) << summary.err;
  rows.Clear();
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(
                  "{\"rows\":" + summary.out + "}", &rows)
                  .ok());
  for (const v1::SummaryRow& r : rows.rows()) {
    if (r.split() == "test") EXPECT_EQ(r.selected_on(), "val");
    if (r.split() == "test_ts") EXPECT_EQ(r.selected_on(), "val_ts");
  }
  Result on_test =
      Mixcal("summary 1 --at best:ece --select-split test", c.port());
  ASSERT_EQ(on_test.code, 0) << on_test.err;
  EXPECT_NE(on_test.out.find("CHOSEN ON TEST DATA"), std::string::npos)
      << on_test.out;
  Result on_val = Mixcal("summary 1 --at best:ece", c.port());
  EXPECT_NE(on_val.out.find("chosen on validation data"), std::string::npos)
      << on_val.out;

  // Plots: each written, well-formed XML, and rendered to PNG.
  const std::string dir = "/tmp/mixcal_cli_plots_" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  for (const std::string& args :
       {std::string("plot reliability 3 --out ") + dir + "/rel.svg",
        std::string("plot reliability 1 --epoch 1 --split test_ts --out ") +
            dir + "/rel_ts.svg",
        std::string("plot curves 1 --metric ece --out ") + dir + "/curves.svg",
        std::string("plot sweep 1 --metric oe --param alpha --out ") + dir +
            "/sweep.svg"}) {
    Result plot = Mixcal(args, c.port());
    ASSERT_EQ(plot.code, 0) << args << ": " << plot.err;
    const std::string file = args.substr(args.rfind(' ') + 1);
    EXPECT_NE(plot.out.find("wrote " + file), std::string::npos);
    const std::string svg = Slurp(file);
    EXPECT_NE(svg.find("<svg"), std::string::npos) << file;
    EXPECT_EQ(
        std::system(
            ("/usr/bin/python3 -c 'import sys, xml.etree.ElementTree as E; "
             "r = E.parse(sys.argv[1]).getroot(); assert "
             "r.tag.endswith(\"svg\")' " +
             file)
                .c_str()),
        0)
        << file << " is not well-formed SVG";
    if (std::system("command -v rsvg-convert >/dev/null") == 0) {
      EXPECT_EQ(std::system(
                    ("rsvg-convert " + file + " -o " + file + ".png").c_str()),
                0)
          << file;
      EXPECT_GT(std::filesystem::file_size(file + ".png"), 1000u) << file;
    }
  }
  const std::string rel = Slurp(dir + "/rel.svg");
  EXPECT_NE(rel.find("ECE "), std::string::npos);
  EXPECT_NE(rel.find("stroke-dasharray"), std::string::npos);  // the diagonal
  std::filesystem::remove_all(dir);
  Result bad = Mixcal("plot curves 1 --metric bogus", c.port());
  EXPECT_EQ(bad.code, 2);

  Result sweeps = Mixcal("sweeps", c.port());
  EXPECT_EQ(sweeps.code, 0);
  EXPECT_NE(sweeps.out.find("succeeded"), std::string::npos) << sweeps.out;
  Result workers = Mixcal("workers --format json", c.port());
  EXPECT_EQ(workers.code, 0);
  EXPECT_NE(workers.out.find("\"device\":\"cpu\""), std::string::npos)
      << workers.out;
}

TEST(CliEndToEndTest, WatchRidesThroughACoordinatorRestart) {
  Cluster c("cli_restart");
  ASSERT_TRUE(c.StartCoordinator(/*lease_s=*/5, /*heartbeat_s=*/0.25));
  c.StartWorker();
  grpc::ClientContext ctx;
  v1::SubmitSweepRequest req;
  *req.mutable_spec() = TinySweep("watch-restart", 5, 1, /*train_count=*/8192);
  v1::Sweep sweep;
  ASSERT_TRUE(c.api().SubmitSweep(&ctx, req, &sweep).ok());
  const int port = c.port();
  auto watch = std::async(std::launch::async,
                          [port] { return Mixcal("watch 1", port); });
  ASSERT_TRUE(WaitFor([&] { return !c.Metrics(1, "test").empty(); }, 120));
  c.KillCoordinator();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ASSERT_TRUE(c.StartCoordinator(/*lease_s=*/5, /*heartbeat_s=*/0.25));
  Result r = watch.get();
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("reconnecting"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("sweep 1 succeeded"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace mixcal::testing
