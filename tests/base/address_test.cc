#include "base/address.h"

#include "gtest/gtest.h"

namespace mixcal {
namespace {

TEST(AddressTest, LoopbackIsDecidedByParsingNotByPrefix) {
  EXPECT_TRUE(IsLoopback("127.0.0.1:7707"));
  EXPECT_TRUE(IsLoopback("127.3.2.1:1"));
  EXPECT_TRUE(IsLoopback("localhost:7707"));
  EXPECT_TRUE(IsLoopback("[::1]:7707"));
  EXPECT_TRUE(IsLoopback("ipv4:127.0.0.1:7707"));
  EXPECT_FALSE(IsLoopback("127.evil.example:7707"));
  EXPECT_FALSE(IsLoopback("0.0.0.0:7707"));
  EXPECT_FALSE(IsLoopback("10.200.0.1:7707"));
  EXPECT_FALSE(IsLoopback("lab-server:7707"));
  EXPECT_FALSE(IsLoopback("[::]:7707"));
}

}  // namespace
}  // namespace mixcal
