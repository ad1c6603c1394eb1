// The mixcal CLI in this process through RunCli, against a coordinator in
// this process (real gRPC on 127.0.0.1, real SQLite). Metrics are reported
// over the worker protocol by the test; the real worker runs in tests/e2e.

#include "client/cli.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/scratch_dir.h"
#include "mixcal/v1/worker.grpc.pb.h"
#include "server/coordinator.h"

namespace mixcal::client {
namespace {

namespace fs = std::filesystem;

struct Result {
  int code = -1;
  std::string out, err;
};

Result RunLine(const std::string& line) {
  std::vector<std::string> args = absl::StrSplit(line, ' ', absl::SkipEmpty());
  std::ostringstream out, err;
  Result r;
  r.code = RunCli(args, out, err, /*out_is_terminal=*/false);
  r.out = out.str();
  r.err = err.str();
  return r;
}

TEST(CliArgsTest, BadArgumentsExitTwoWithOneClearLine) {
  for (const char* args :
       {"bogus", "summary", "summary x", "summary 1 --at sometime", "jobs 1 2",
        "submit --name x", "submit --name x --methods mixup:abc",
        "submit --name x --methods bogus", "sweeps --frobnicate",
        "metrics 1 --format xml", "submit /nonexistent/spec.json",
        "plot curves 1 --metric e", "plot curves 1 --metric ec",
        "plot sweep 1 --metric lr", "plot sweep 1 --param zeta",
        "plot reliability 1 --epoch 0"}) {
    Result r = RunLine(absl::StrCat(args, " --address 127.0.0.1:1"));
    EXPECT_EQ(r.code, 2) << "mixcal " << args << ": " << r.out << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1)
        << "mixcal " << args << ": " << r.err;
  }
  Result r = RunLine("plot curves 1 --metric e");
  EXPECT_NE(r.err.find("--metric must be one of accuracy|ece|"),
            std::string::npos)
      << r.err;
  Result none = RunLine("");
  EXPECT_EQ(none.code, 2);
  EXPECT_NE(none.err.find("Commands:"), std::string::npos);
}

TEST(CliArgsTest, ATokenNeverGoesInPlaintextToAnotherMachine) {
  Result r = RunLine("sweeps --address 10.1.2.3:7707 --token 0123456789abcdef");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("refusing to send the token in plaintext to "
                       "10.1.2.3:7707"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("--tls-ca"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("0123456789abcdef"), std::string::npos);  // no echo
  // --insecure lets it try (and fail to connect, quickly: nothing listens).
  r = RunLine(
      "sweeps --address 127.0.0.1:1 --token 0123456789abcdef --insecure");
  EXPECT_EQ(r.err.find("refusing"), std::string::npos) << r.err;
}

TEST(CliArgsTest, EveryCommandHasHelpListingItsFlagsAndExitsZero) {
  Result main_help = RunLine("--help");
  EXPECT_EQ(main_help.code, 0);
  for (const char* cmd : {"submit", "sweeps", "jobs", "workers", "cancel",
                          "retry", "watch", "summary", "metrics", "plot"}) {
    EXPECT_NE(main_help.out.find(std::string("mixcal ") + cmd),
              std::string::npos)
        << cmd;
    Result h = RunLine(absl::StrCat(cmd, " --help"));
    EXPECT_EQ(h.code, 0) << cmd;
    EXPECT_NE(h.out.find(absl::StrCat("usage: mixcal ", cmd)),
              std::string::npos)
        << h.out;
  }
  EXPECT_NE(RunLine("summary --help").out.find("best:METRIC"), std::string::npos);
  // Every choice of submit's flags: the methods, datasets and models.
  const std::string submit = RunLine("submit --help").out;
  for (const char* choice :
       {"baseline", "mixup", "feature_mixup", "label_smoothing", "erl",
        "focal", "cutmix", "regmixup", "mmce", "manifold_mixup",
        "fashion-mnist", "mnist", "cifar10", "cifar100", "synthetic", "npz",
        "image-folder", "lenet", "mlp", "resnet18", "vgg16", "torchscript"})
    EXPECT_NE(submit.find(choice), std::string::npos) << choice;
  EXPECT_NE(RunLine("plot --help").out.find("--metric"), std::string::npos);
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::mixcal::testing::FreshTestDir("cli");
    server::CoordinatorOptions o;
    o.listen = "127.0.0.1:0";
    o.db_path = (dir_ / "mixcal.db").string();
    auto c = server::Coordinator::Start(o);
    ASSERT_TRUE(c.ok()) << c.status();
    coordinator_ = std::move(*c);
    address_ = absl::StrCat("127.0.0.1:", coordinator_->port());
    workers_ = v1::WorkerService::NewStub(
        grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    coordinator_.reset();
    fs::remove_all(dir_);
  }
  Result Mixcal(const std::string& line) {
    return RunLine(absl::StrCat(line, " --address ", address_));
  }
  // A CPU worker, registered.
  int64_t RegisterWorker() {
    grpc::ClientContext rc;
    v1::RegisterWorkerRequest reg;
    reg.set_host("test");
    reg.set_device("cpu");
    v1::RegisterWorkerResponse w;
    EXPECT_TRUE(workers_->RegisterWorker(&rc, reg, &w).ok());
    return w.worker_id();
  }
  // The next queued job's lease for `worker` (none after `wait_ms`).
  v1::AcquireJobResponse Acquire(int64_t worker, int wait_ms = 0) {
    grpc::ClientContext ac;
    v1::AcquireJobRequest areq;
    areq.set_worker_id(worker);
    areq.set_wait_ms(wait_ms);
    v1::AcquireJobResponse a;
    EXPECT_TRUE(workers_->AcquireJob(&ac, areq, &a).ok());
    return a;
  }
  // Leases every queued job to one worker and reports `epochs` epochs of
  // each, ECE 0.1/epoch for baseline and 0.02/epoch for mixup, then ends it.
  void TrainAll(int epochs) {
    const int64_t worker = RegisterWorker();
    while (true) {
      const v1::AcquireJobResponse a = Acquire(worker, 200);
      if (!a.has_job()) return;
      const double scale = a.job().method() == "baseline" ? 0.1 : 0.02;
      for (int e = 1; e <= epochs; ++e) {
        grpc::ClientContext ec;
        v1::ReportEpochRequest r;
        *r.mutable_lease() = a.lease();
        v1::EpochMetrics* m = r.add_metrics();
        m->set_epoch(e);
        m->set_split("test");
        m->set_count(100);
        m->set_accuracy(0.9);
        m->set_ece(scale / e + 0.001 * a.job().seed());
        for (int b = 0; b < 15; ++b) {
          v1::ReliabilityBin* bin = m->add_bins();
          bin->set_count(b == 14 ? 100 : 0);
          bin->set_confidence_sum(b == 14 ? 97.0 : 0);
          bin->set_correct(b == 14 ? 90 : 0);
        }
        v1::ReportEpochResponse resp;
        ASSERT_TRUE(workers_->ReportEpoch(&ec, r, &resp).ok());
      }
      grpc::ClientContext fc;
      v1::FinishJobRequest f;
      *f.mutable_lease() = a.lease();
      f.set_outcome(v1::SUCCEEDED);
      v1::FinishJobResponse fr;
      ASSERT_TRUE(workers_->FinishJob(&fc, f, &fr).ok());
    }
  }

  fs::path dir_;
  std::unique_ptr<server::Coordinator> coordinator_;
  std::string address_;
  std::unique_ptr<v1::WorkerService::Stub> workers_;
};

TEST_F(CliTest, SubmitListCancelAndRetry) {
  Result r = Mixcal(
      "submit --name cli --dataset synthetic --model mlp "
      "--methods baseline,ls:0.1 --seeds 2 --epochs 2");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("sweep 1"), std::string::npos) << r.out;
  r = Mixcal("sweeps");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("cli"), std::string::npos) << r.out;
  r = Mixcal("jobs 1 --format json");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '{') >= 4, true) << r.out;
  EXPECT_NE(r.out.find("label_smoothing"), std::string::npos);
  r = Mixcal("cancel 1");
  EXPECT_EQ(r.code, 0) << r.err;
  r = Mixcal("jobs 1");
  EXPECT_NE(r.out.find("cancelled"), std::string::npos) << r.out;
  r = Mixcal("retry 2");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(Mixcal("jobs 1").out.find("queued"), std::string::npos);
  r = Mixcal("summary 42");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("no sweep 42"), std::string::npos) << r.err;
  r = Mixcal("submit --name bad --dataset synthetic --methods mixup:11");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("methods[0].values[0]"), std::string::npos) << r.err;
}

TEST_F(CliTest, SubmitAlwaysCarriesARequestIdSoARetryNeverCopies) {
  Result r = Mixcal(
      "submit --name rid --dataset synthetic --model mlp --methods baseline "
      "--format json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"request_id\":\"cli-"), std::string::npos) << r.out;
  // The same id again (what a retry sends) returns the same sweep.
  Result a = Mixcal(
      "submit --name rid2 --dataset synthetic --model mlp --methods baseline "
      "--request-id fixed-1");
  Result b = Mixcal(
      "submit --name rid2 --dataset synthetic --model mlp --methods baseline "
      "--request-id fixed-1");
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_EQ(a.out.substr(0, 8), b.out.substr(0, 8)) << a.out << b.out;
  EXPECT_NE(Mixcal("sweeps").out.find("rid2"), std::string::npos);
}

TEST(CliSubmitTest, AnUnreachableCoordinatorSaysTheRetryIsSafe) {
  Result r = RunLine(
      "submit --name x --dataset synthetic --methods baseline --address "
      "127.0.0.1:1");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("--request-id cli-"), std::string::npos) << r.err;
}

TEST_F(CliTest, SummaryMetricsAndPlotsShowWhatWasStored) {
  ASSERT_EQ(Mixcal("submit --name s --dataset synthetic --model mlp "
                   "--methods baseline,mixup:0.4 --seeds 2 --epochs 3")
                .code,
            0);
  TrainAll(3);
  Result r = Mixcal("summary 1 --format json");
  ASSERT_EQ(r.code, 0) << r.err;
  // Baseline's final ECE over seeds 0 and 1: 0.1/3 + 0, 0.1/3 + 0.001.
  EXPECT_NE(r.out.find("\"method\":\"baseline\""), std::string::npos) << r.out;
  r = Mixcal("metrics 1 --format csv");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1 + 4 * 3) << r.out;
  const std::string svg = (dir_ / "curves.svg").string();
  r = Mixcal(absl::StrCat("plot curves 1 --metric ece --out ", svg));
  ASSERT_EQ(r.code, 0) << r.err;
  std::ifstream in(svg);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(text.find("<svg"), std::string::npos);
  EXPECT_NE(text.find("mixup 0.4"), std::string::npos);
  r = Mixcal(absl::StrCat("plot reliability 1 --out ", (dir_ / "rel.svg").string()));
  EXPECT_EQ(r.code, 0) << r.err;
  r = Mixcal(absl::StrCat("plot curves 1 --metric train_loss --out ",
                          (dir_ / "x.svg").string()));
  EXPECT_EQ(r.code, 0) << r.err;  // a known metric (zero here) plots
}

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos;
       at = text.find(what, at + 1))
    ++n;
  return n;
}

TEST_F(CliTest, SummaryVsPairsEachSeedWithTheReference) {
  ASSERT_EQ(Mixcal("submit --name s --dataset synthetic --model mlp "
                   "--methods baseline,mixup:0.4 --seeds 2 --epochs 3")
                .code,
            0);
  TrainAll(3);
  // Final ECE: baseline 0.1/3 + 0.001*seed, mixup 0.02/3 + 0.001*seed: the
  // paired difference is -0.08/3 = -0.0267 on both seeds, so its interval
  // has no width and excludes 0.
  Result r = Mixcal("summary 1 --vs baseline");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("difference to baseline"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("-0.0267 [-0.0267, -0.0267] *"), std::string::npos)
      << r.out;
  r = Mixcal("summary 1 --vs baseline --format json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"vs_method\":\"baseline\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"significant\":true"), std::string::npos) << r.out;
  r = Mixcal("summary 1 --vs baseline --format csv");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("vs_diff,vs_low,vs_high"), std::string::npos) << r.out;
  // An unknown reference: one line naming what the sweep has.
  r = Mixcal("summary 1 --vs erl");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("baseline, mixup:0.4"), std::string::npos) << r.err;
  // The same comparison as a plot: the difference against the parameter.
  const fs::path svg = dir_ / "diff.svg";
  r = Mixcal(absl::StrCat("plot sweep 1 --metric ece --vs baseline --out ",
                          svg.string()));
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string text = ReadAll(svg);
  EXPECT_NE(text.find("minus baseline"), std::string::npos);
  EXPECT_NE(text.find("baseline (zero)"), std::string::npos);
}

TEST_F(CliTest, PlotEvolutionDrawsAPanelPerEpochAndARowPerJob) {
  ASSERT_EQ(Mixcal("submit --name s --dataset synthetic --model mlp "
                   "--methods baseline,mixup:0.4 --seeds 2 --epochs 3")
                .code,
            0);
  TrainAll(3);
  const fs::path svg = dir_ / "evolution.svg";
  // Jobs 1 (baseline seed 0) and 3 (mixup seed 0), epochs 1-3 of split test.
  Result r = Mixcal(absl::StrCat("plot evolution 1 --with 3 --epochs 1,2,3 "
                                 "--split test --out ",
                                 svg.string()));
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string text = ReadAll(svg);
  EXPECT_EQ(Count(text, ">epoch 1: ECE"), 2u);
  EXPECT_EQ(Count(text, ">epoch 3: ECE"), 2u);
  EXPECT_NE(text.find("job 1: baseline"), std::string::npos);
  EXPECT_NE(text.find("job 3: mixup 0.4"), std::string::npos);
  // Every bin holds all 100 examples at confidence 0.97, accuracy 0.9: one
  // overconfident bubble per panel, 6 panels.
  EXPECT_EQ(Count(text, "100.0% of examples"), 6u);
  // Well-formed XML, as a browser parses it.
  const std::string check = absl::StrCat(
      "/usr/bin/python3 -c 'import sys, xml.etree.ElementTree as E; "
      "E.parse(sys.argv[1])' ",
      svg.string());
  EXPECT_EQ(std::system(check.c_str()), 0) << text;
  // Without --epochs: the first and the newest (3 epochs: 1 and 3).
  r = Mixcal(absl::StrCat("plot evolution 1 --split test --out ", svg.string()));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Count(ReadAll(svg), ": ECE "), 2u);
  // The default split is train, which this sweep did not evaluate.
  r = Mixcal(absl::StrCat("plot evolution 1 --out ", svg.string()));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("trainEvalCount"), std::string::npos) << r.err;
  r = Mixcal("plot evolution 1 --epochs 0,x");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--epochs"), std::string::npos) << r.err;
}

TEST_F(CliTest, FlagsOverrideASpecFileAndMakeItAnotherSweep) {
  const fs::path spec = dir_ / "spec.json";
  std::ofstream(spec) << R"({"name": "file", "requestId": "file-v1",
    "data": {"dataset": "synthetic"}, "model": "mlp",
    "training": {"epochs": 4},
    "methods": [{"name": "baseline"}, {"name": "mixup", "values": [0.2]}],
    "seeds": [0, 1, 2]})";
  Result r = Mixcal(absl::StrCat("submit ", spec.string(), " --format json"));
  ASSERT_EQ(r.code, 0) << r.err;
  r = Mixcal(absl::StrCat("submit ", spec.string(),
                          " --seeds 1 --epochs 2 --methods baseline "
                          "--weight-decay 0 --schedule cosine --format json"));
  ASSERT_EQ(r.code, 0) << r.err;
  // A new sweep (the file's request id no longer applies) of 1 job.
  EXPECT_NE(r.out.find("\"id\":\"2\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"job_ids\":[\"7\"]"), std::string::npos) << r.out;
  r = Mixcal("jobs 2 --format json");
  EXPECT_NE(r.out.find("\"epochs\":2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"schedule\":\"cosine\""), std::string::npos) << r.out;
  // Without overrides the file's request id returns the first sweep.
  r = Mixcal(absl::StrCat("submit ", spec.string(), " --format json"));
  EXPECT_NE(r.out.find("\"id\":\"1\""), std::string::npos) << r.out;
}

TEST_F(CliTest, PredictionsReachNumPyBitForBit) {
  ASSERT_EQ(Mixcal("submit --name p --dataset synthetic --model mlp "
                   "--methods baseline --epochs 1")
                .code,
            0);
  const v1::AcquireJobResponse a = Acquire(RegisterWorker());
  ASSERT_TRUE(a.has_job());
  // 100,000 rows x 4 classes: several chunks of GetPredictions. Values
  // spread over float16's range, each row's label its row modulo 4.
  const int rows = 100000, classes = 4;
  std::string probs, labels;
  for (int i = 0; i < rows; ++i) {
    for (int k = 0; k < classes; ++k) {
      const uint16_t h = static_cast<uint16_t>((i * 7 + k * 13) % 0x3c00);
      probs.push_back(static_cast<char>(h & 0xff));
      probs.push_back(static_cast<char>(h >> 8));
    }
    const int32_t y = i % classes;
    labels.append(reinterpret_cast<const char*>(&y), 4);
  }
  grpc::ClientContext ec;
  v1::ReportEpochRequest r;
  *r.mutable_lease() = a.lease();
  v1::EpochMetrics* m = r.add_metrics();
  m->set_epoch(1);
  m->set_split("test");
  m->set_count(rows);
  m->set_accuracy(0.5);
  v1::Predictions* p = r.add_predictions();
  p->set_epoch(1);
  p->set_split("test");
  p->set_count(rows);
  p->set_classes(classes);
  p->set_probabilities(probs);
  p->set_labels(labels);
  v1::ReportEpochResponse resp;
  grpc::Status st = workers_->ReportEpoch(&ec, r, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();

  const fs::path npz = dir_ / "p.npz", csv = dir_ / "p.csv";
  Result out = Mixcal(absl::StrCat("predictions 1 --out ", npz.string()));
  ASSERT_EQ(out.code, 0) << out.err;
  EXPECT_NE(out.out.find("100000 examples x 4 classes"), std::string::npos) << out.out;
  std::ofstream(dir_ / "probs.bin", std::ios::binary) << probs;
  std::ofstream(dir_ / "labels.bin", std::ios::binary) << labels;
  // NumPy reads the file, and what it holds is the worker's bytes.
  const std::string check = absl::StrCat(
      "/usr/bin/python3 -c \"import numpy as np, sys; d = np.load(sys.argv[1]); "
      "p, y = d['probabilities'], d['labels']; "
      "assert p.dtype == np.float16 and p.shape == (100000, 4), (p.dtype, p.shape); "
      "assert y.dtype == np.int32 and y.shape == (100000,); "
      "assert p.tobytes() == open(sys.argv[2], 'rb').read(); "
      "assert y.tobytes() == open(sys.argv[3], 'rb').read()\" ",
      npz.string(), " ", (dir_ / "probs.bin").string(), " ",
      (dir_ / "labels.bin").string());
  EXPECT_EQ(std::system(check.c_str()), 0);
  out = Mixcal(absl::StrCat("predictions 1 --out ", csv.string()));
  ASSERT_EQ(out.code, 0) << out.err;
  const std::string text = ReadAll(csv);
  EXPECT_EQ(text.substr(0, 22), "row,label,p0,p1,p2,p3\n");
  EXPECT_EQ(Count(text, "\n"), 100001u);
  // Errors name what is wrong.
  out = Mixcal("predictions 1 --out p.txt");
  EXPECT_EQ(out.code, 2);
  EXPECT_NE(out.err.find(".npz or .csv"), std::string::npos);
  out = Mixcal(absl::StrCat("predictions 1 --epoch 3 --out ", npz.string()));
  EXPECT_EQ(out.code, 1);
  EXPECT_NE(out.err.find("epochs kept: 1"), std::string::npos) << out.err;
}

TEST_F(CliTest, AnUnwritablePlotFileIsAnErrorNamingIt) {
  ASSERT_EQ(Mixcal("submit --name s --dataset synthetic --model mlp "
                   "--methods baseline --epochs 1")
                .code,
            0);
  TrainAll(1);
  Result r = Mixcal("plot reliability 1 --out /nonexistent-dir/rel.svg");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("/nonexistent-dir/rel.svg"), std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace mixcal::client
