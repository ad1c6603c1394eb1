// The child process that checks a model file before the worker loads it:
// whatever the child does (crash, hang, refuse), the worker gets one line.
// The real checker (mixcal-worker --check_model) runs in
// tests/e2e/own_model_e2e_test; here stand-in scripts play the child.

#include "worker/model_check.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "tests/scratch_dir.h"

namespace mixcal::worker {
namespace {

namespace fs = std::filesystem;

class ModelCheckTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = ::mixcal::testing::FreshTestDir("check"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Script(const std::string& body) {
    const std::string path = (dir_ / "checker.sh").string();
    std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
    ::chmod(path.c_str(), 0755);
    return path;
  }
  core::InputShape Shape() {
    core::InputShape s;
    s.channels = 3;
    s.height = s.width = 32;
    s.classes = 10;
    return s;
  }
  fs::path dir_;
};

TEST_F(ModelCheckTest, ACrashingLoaderFailsTheCheckNotTheWorker) {
  absl::Status s = CheckModelInChild(Script("kill -SEGV $$"), "/m/net.pt",
                                     Shape(), absl::Seconds(30));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "model_file net.pt: LibTorch crashed loading or running it "
            "(signal 11, Segmentation fault); it is damaged, or was not made "
            "by torch.jit.save");
}

TEST_F(ModelCheckTest, AHangingCheckIsStoppedAtItsTimeout) {
  absl::Status s = CheckModelInChild(Script("exec sleep 30"), "/m/net.pt",
                                     Shape(), absl::Milliseconds(300));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("took over 300ms; stopped"),
            absl::string_view::npos)
      << s.message();
}

TEST_F(ModelCheckTest, TheChildsReasonAndArgumentsComeThrough) {
  // The child sees the file and the shape; its first line is the reason.
  absl::Status s = CheckModelInChild(
      Script("echo \"$1 $2\"; echo second line; exit 1"), "/m/net.pt",
      Shape(), absl::Seconds(30));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "--check_model=/m/net.pt --check_shape=images:3:32:32:10");
  EXPECT_TRUE(CheckModelInChild(Script("exit 0"), "/m/net.pt", Shape(),
                                absl::Seconds(30))
                  .ok());
}

TEST_F(ModelCheckTest, ShapesRoundTrip) {
  core::InputShape t;
  t.tokens = true;
  t.length = 64;
  t.vocab = 30000;
  t.classes = 4;
  core::InputShape back;
  ASSERT_TRUE(DecodeShape(EncodeShape(t), &back));
  EXPECT_TRUE(back.tokens);
  EXPECT_EQ(back.length, 64);
  EXPECT_EQ(back.vocab, 30000);
  EXPECT_EQ(back.classes, 4);
  EXPECT_FALSE(DecodeShape("images:3:32:32", &back));
  EXPECT_FALSE(DecodeShape("tokens:-1:2:3", &back));
}

}  // namespace
}  // namespace mixcal::worker
