#include "base/json_syntax.h"

#include "gtest/gtest.h"

namespace mixcal {
namespace {

TEST(JsonSyntaxTest, AcceptsStrictJson) {
  for (const char* ok :
       {R"({"seeds": [0, 1, 2], "name": "a\"b\u00e9", "x": -1.5e-3})",
        "[]", "{}", " true ", "null", R"({"a": {"b": [{}, [], 0.0]}})"})
    EXPECT_TRUE(CheckJsonSyntax(ok).ok()) << ok;
}

TEST(JsonSyntaxTest, RefusesWhatProtobufWouldAcceptNamingWhere) {
  absl::Status s = CheckJsonSyntax("{\n  \"methods\": [{\"name\": \"mixup\", \"values\": [0.2,]}]\n}");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "line 2, column 48: a trailing comma before ']'");
  EXPECT_EQ(CheckJsonSyntax(R"({"a": 1,})").message(),
            "line 1, column 9: a trailing comma before '}'");
  EXPECT_FALSE(CheckJsonSyntax("{'a': 1}").ok());          // single quotes
  EXPECT_FALSE(CheckJsonSyntax(R"({"a": 01})").ok());      // leading zero
  EXPECT_FALSE(CheckJsonSyntax(R"({"a": .5})").ok());
  EXPECT_FALSE(CheckJsonSyntax(R"({"a": 1} x)").ok());     // text after
  EXPECT_FALSE(CheckJsonSyntax(R"({"a": "b)").ok());       // unterminated
  EXPECT_FALSE(CheckJsonSyntax(R"({"a": NaN})").ok());
  EXPECT_FALSE(CheckJsonSyntax(R"({a: 1})").ok());         // unquoted key
  EXPECT_FALSE(CheckJsonSyntax("").ok());
}

}  // namespace
}  // namespace mixcal
