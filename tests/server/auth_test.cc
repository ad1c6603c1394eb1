#include "server/auth.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace mixcal::server {
namespace {

namespace fs = std::filesystem;

TEST(AuthTest, ATokensFileOthersCanReadIsWarnedAbout) {
  const fs::path path = fs::temp_directory_path() /
                        ("mixcal_tokens_" + std::to_string(::getpid()));
  std::ofstream(path) << "0123456789abcdef-token admin alice\n";
  ::chmod(path.c_str(), 0644);
  absl::StatusOr<Authenticator> a = Authenticator::FromFile(path.string());
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_NE(a->warning().find("can be read by other users (mode 644)"),
            std::string::npos)
      << a->warning();
  ::chmod(path.c_str(), 0600);
  a = Authenticator::FromFile(path.string());
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->warning(), "");
  fs::remove(path);
}

TEST(AuthTest, MalformedFilesNameTheLineAndNeverEchoTheToken) {
  absl::StatusOr<Authenticator> a =
      Authenticator::FromText("short admin\n", "tokens.txt");
  ASSERT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(a.status().message().find("tokens.txt:1"), std::string::npos);
  EXPECT_EQ(a.status().message().find("short"), std::string::npos);
  // A name that is not UTF-8 (Latin-1 "Jos\xe9") or holds a control
  // character would poison every listing of its sweeps.
  for (const char* name : {"Jos\xe9", "bad\x1b[2Jname"}) {
    a = Authenticator::FromText(
        absl::StrCat("0123456789abcdef0123 submit ", name, "\n"), "tokens");
    ASSERT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_NE(a.status().message().find("tokens:1: a name must be UTF-8 text"),
              std::string::npos)
        << a.status();
  }
  a = Authenticator::FromText("0123456789abcdef-secret boss\n", "t");
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().message().find("0123456789abcdef-secret"),
            std::string::npos)
      << a.status();
}

}  // namespace
}  // namespace mixcal::server
