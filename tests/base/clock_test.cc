#include "base/clock.h"

#include "gtest/gtest.h"

namespace mixcal {
namespace {

TEST(ClockTest, ManualClockMovesOnlyWhenTold) {
  ManualClock c(1000);
  EXPECT_EQ(c.NowMicros(), 1000);
  EXPECT_EQ(c.NowMicros(), 1000);
  c.AdvanceMicros(5);
  EXPECT_EQ(c.NowMicros(), 1005);
  c.AdvanceSeconds(0.5);
  EXPECT_EQ(c.NowMicros(), 501005);
}

TEST(ClockTest, SystemClockIsNearNowAndMonotoneEnough) {
  const int64_t a = SystemClock()->NowMicros();
  const int64_t b = SystemClock()->NowMicros();
  EXPECT_GT(a, int64_t{1'600'000'000} * 1'000'000);  // after 2020
  EXPECT_GE(b, a);
}

}  // namespace
}  // namespace mixcal
