#include "base/utf8.h"

#include "gtest/gtest.h"

namespace mixcal {
namespace {

TEST(Utf8Test, ValidityByTheStandard) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("\xC3\xA9"));          // é
  EXPECT_TRUE(IsValidUtf8("\xE2\x82\xAC"));      // €
  EXPECT_TRUE(IsValidUtf8("\xF0\x9F\x98\x80"));  // U+1F600
  EXPECT_FALSE(IsValidUtf8("\xC3"));             // cut in the middle
  EXPECT_FALSE(IsValidUtf8("\xE2\x82"));
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate U+D800
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xFF"));
}

TEST(Utf8Test, TruncationKeepsWholeCharacters) {
  // 4,095 bytes of 3-byte characters cut to 4,096: 1,365 characters exactly.
  std::string euros;
  for (int i = 0; i < 1365; ++i) euros += "\xE2\x82\xAC";
  const std::string cut = ToValidUtf8(euros + "\xE2\x82\xAC", 4096);
  EXPECT_EQ(cut.size(), 4095u);
  EXPECT_TRUE(IsValidUtf8(cut));
  // Invalid bytes become U+FFFD.
  EXPECT_EQ(ToValidUtf8("a\xFF" "b", 100), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(ToValidUtf8("abc", 2), "ab");
}

TEST(Utf8Test, CheckTextNamesTheField) {
  EXPECT_TRUE(CheckText("name", "ok", 10).ok());
  absl::Status s = CheckText("data.data_dir", std::string("a\0b", 3), 10);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("data.data_dir must not contain a NUL"),
            std::string::npos)
      << s;
  s = CheckText("host", "\xC3", 10);
  EXPECT_NE(s.message().find("host must be valid UTF-8"), std::string::npos);
  s = CheckText("name", std::string(11, 'x'), 10);
  EXPECT_NE(s.message().find("name must be at most 10 bytes, got 11"),
            std::string::npos);
}

TEST(Utf8Test, EchoIsShortAndValid) {
  EXPECT_EQ(Echo("short"), "short");
  const std::string e = Echo(std::string(10000, 'x'));
  EXPECT_LT(e.size(), 100u);
  EXPECT_NE(e.find("(10000 bytes)"), std::string::npos);
  EXPECT_TRUE(IsValidUtf8(Echo("\xFF\xFE")));
}

}  // namespace
}  // namespace mixcal
