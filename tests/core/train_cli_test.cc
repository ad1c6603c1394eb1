// mixcal-train as a user runs it: flags in, JSON lines out, exit codes.

#include <sys/wait.h>

#include <cstdio>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace {

struct Output {
  int code = -1;
  std::string out;  // stdout and stderr
};

Output RunTrain(const std::string& args) {
  Output o;
  std::string cmd = std::string(MIXCAL_TRAIN_BIN) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) o.out.append(buf, n);
  int status = pclose(p);
  o.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return o;
}

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < s.size()) {
    size_t end = s.find('\n', start);
    if (end == std::string::npos) end = s.size();
    lines.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

TEST(TrainCliTest, HelpListsEveryDatasetModelMethodAndRange) {
  Output o = RunTrain("--help");
  EXPECT_EQ(o.code, 0);
  for (const char* word :
       {"fashion-mnist",   "mnist",         "cifar10",
        "cifar100",        "synthetic",     "mlp",
        "lenet",           "resnet18",      "vgg16",
        "baseline",        "mixup",         "feature_mixup",
        "label_smoothing", "erl",           "--alpha",
        "[0, 10]",         "--epsilon",     "[0, 1)",
        "--label-policy",  "--ls-mode",     "--label-noise",
        "--batch-size",    "--train-limit", "--data-dir",
        "--device",        "--ece-bins",    "--checkpoint-dir",
        "--threads",       "--seed",        "--lr"}) {
    EXPECT_NE(o.out.find(word), std::string::npos) << word;
  }
}

TEST(TrainCliTest, BadFlagsGiveOneLineAndExitTwo) {
  for (const char* args :
       {"--alpha -1", "--bogus", "--epochs ten", "--model resnet50",
        "--method mixup:abc", "--epochs"}) {
    Output o = RunTrain(args);
    EXPECT_EQ(o.code, 2) << args;
    EXPECT_EQ(Lines(o.out).size(), 1u) << args << ": " << o.out;
    EXPECT_EQ(o.out.rfind("mixcal-train: ", 0), 0u) << o.out;
  }
  Output o = RunTrain("--alpha -1");
  EXPECT_NE(o.out.find("alpha must be in [0, 10], got -1"), std::string::npos)
      << o.out;
}

TEST(TrainCliTest, PrintsOneJsonObjectPerEpochAndSplit) {
  Output o = RunTrain(
      "--dataset synthetic --model mlp --method mixup:0.4 --epochs 2 --threads "
      "1 "
      "--noise-eval 64");
  ASSERT_EQ(o.code, 0) << o.out;
  std::vector<std::string> lines = Lines(o.out);
  // 2 epochs x (test, val, val_ts, test_ts, noise)
  ASSERT_EQ(lines.size(), 10u) << o.out;
  for (const std::string& line : lines) {
    EXPECT_EQ(line.front(), '{');
    EXPECT_EQ(line.back(), '}');
    for (const char* key :
         {"\"epoch\":", "\"split\":", "\"accuracy\":", "\"nll\":", "\"brier\":",
          "\"ece\":", "\"mce\":", "\"oe\":", "\"adaptive_ece\":",
          "\"mean_confidence\":", "\"mean_entropy\":", "\"train_loss\":",
          "\"lr\":", "\"samples_per_sec\":", "\"bins\":["}) {
      EXPECT_NE(line.find(key), std::string::npos) << key << " in " << line;
    }
  }
  EXPECT_NE(lines[0].find("\"split\":\"test\""), std::string::npos);
  EXPECT_NE(lines[1].find("\"split\":\"val\""), std::string::npos);
  EXPECT_NE(lines[2].find("\"split\":\"val_ts\""), std::string::npos);
  EXPECT_NE(lines[2].find("\"temperature\":"), std::string::npos);
  EXPECT_NE(lines[3].find("\"split\":\"test_ts\""), std::string::npos);
  EXPECT_NE(lines[3].find("\"temperature\":"), std::string::npos);
  EXPECT_NE(lines[4].find("\"auroc\":"), std::string::npos);
  EXPECT_NE(lines[5].find("\"epoch\":2"), std::string::npos);
  EXPECT_NE(lines[0].find("{\"count\":"), std::string::npos);
}

TEST(TrainCliTest, MissingDataIsExitOneNamingThePath) {
  Output o =
      RunTrain("--dataset mnist --data-dir /nonexistent/mnist --epochs 1");
  EXPECT_EQ(o.code, 1);
  EXPECT_NE(o.out.find("/nonexistent/mnist"), std::string::npos) << o.out;
}

}  // namespace
