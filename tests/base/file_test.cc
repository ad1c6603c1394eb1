#include "base/file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "gtest/gtest.h"

namespace mixcal {
namespace {

namespace fs = std::filesystem;

class FileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("mixcal-file-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    fs::permissions(dir_, fs::perms::owner_all);
    fs::remove_all(dir_);
  }
  fs::path dir_;
};

TEST_F(FileTest, WriteThenReadRoundTripsBytes) {
  const std::string path = (dir_ / "f").string();
  const std::string text("a\0b\nc", 5);
  ASSERT_TRUE(WriteFileAtomically(path, text, "test file").ok());
  absl::StatusOr<std::string> back = ReadFile(path, "test file");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, text);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

TEST_F(FileTest, ReadOfAMissingFileNamesItAndWhatItIsFor) {
  const std::string path = (dir_ / "missing").string();
  absl::StatusOr<std::string> r = ReadFile(path, "TLS key");
  ASSERT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("TLS key " + path), std::string::npos)
      << r.status();
}

TEST_F(FileTest, WriteIntoAnUnwritableDirectoryIsAnErrorNamingTheFile) {
  if (::geteuid() == 0) {
    // root writes anyway; a path under a regular file fails for everyone.
    const std::string file = (dir_ / "plain").string();
    ASSERT_TRUE(WriteFileAtomically(file, "x", "f").ok());
    absl::Status s = WriteFileAtomically(file + "/port", "1\n", "port file");
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find("port file " + file + "/port"),
              std::string::npos)
        << s;
    return;
  }
  fs::permissions(dir_, fs::perms::owner_read | fs::perms::owner_exec);
  const std::string path = (dir_ / "port").string();
  absl::Status s = WriteFileAtomically(path, "1\n", "port file");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("port file " + path), std::string::npos) << s;
  EXPECT_FALSE(fs::exists(path));
}

}  // namespace
}  // namespace mixcal
