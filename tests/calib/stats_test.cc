#include "calib/stats.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace mixcal::calib {
namespace {

TEST(StatsTest, MeanAndSampleStdByHand) {
  // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, squared deviations sum 32, n - 1 = 7.
  std::vector<double> v = {2, 4, 4, 4, 5, 5, 7, 9};
  MeanStd s = MeanAndStd(v);
  EXPECT_DOUBLE_EQ(s.mean, 5.0);
  EXPECT_DOUBLE_EQ(s.std, std::sqrt(32.0 / 7.0));
  EXPECT_EQ(s.count, 8u);
}

TEST(StatsTest, OneValueHasNoSpreadAndNoneIsZero) {
  std::vector<double> one = {0.25};
  EXPECT_DOUBLE_EQ(MeanAndStd(one).mean, 0.25);
  EXPECT_DOUBLE_EQ(MeanAndStd(one).std, 0.0);
  MeanStd none = MeanAndStd({});
  EXPECT_EQ(none.count, 0u);
  EXPECT_DOUBLE_EQ(none.mean, 0.0);
}

}  // namespace
}  // namespace mixcal::calib
