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


TEST(StatsTest, StudentTQuantilesMatchPublishedTables) {
  // Two-sided 95% critical values from any t table (e.g. NIST/SEMATECH
  // e-Handbook 1.3.6.7.2), to the table's 3 decimals and beyond.
  EXPECT_NEAR(StudentTQuantile(0.975, 1), 12.7062047, 1e-6);
  EXPECT_NEAR(StudentTQuantile(0.975, 2), 4.30265273, 1e-7);
  EXPECT_NEAR(StudentTQuantile(0.975, 4), 2.77644511, 1e-7);
  EXPECT_NEAR(StudentTQuantile(0.975, 9), 2.26215716, 1e-7);
  EXPECT_NEAR(StudentTQuantile(0.975, 30), 2.04227246, 1e-7);
  EXPECT_NEAR(StudentTQuantile(0.95, 5), 2.01504837, 1e-7);
  EXPECT_NEAR(StudentTQuantile(0.025, 2), -4.30265273, 1e-7);
  EXPECT_NEAR(StudentTQuantile(0.975, 1e6), 1.95996, 1e-4);
  EXPECT_TRUE(std::isnan(StudentTQuantile(1.0, 3)));
  EXPECT_TRUE(std::isnan(StudentTQuantile(0.9, 0)));
}

TEST(StatsTest, PairedDifferenceByHand) {
  // d = a - b = -0.05, -0.06, -0.03: mean -0.046667; squared deviations
  // 1.1111e-5 + 1.7778e-4 + 2.7778e-4 = 4.6667e-4, / 2 -> sd 0.0152753;
  // half width 4.302653 * 0.0152753 / sqrt(3) = 0.0379458.
  std::vector<double> a = {0.05, 0.07, 0.06}, b = {0.10, 0.13, 0.09};
  PairedDiff d = PairedDifference(a, b);
  EXPECT_EQ(d.pairs, 3u);
  EXPECT_NEAR(d.mean, -0.0466667, 1e-6);
  EXPECT_NEAR(d.low, -0.0846125, 1e-6);
  EXPECT_NEAR(d.high, -0.0087209, 1e-6);
  EXPECT_TRUE(d.significant());
  // Pairing matters: the same values unpaired would not separate as much,
  // and a difference that changes sign is not significant.
  std::vector<double> c = {0.11, 0.12, 0.08};
  PairedDiff e = PairedDifference(c, b);  // 0.01, -0.01, -0.01
  EXPECT_NEAR(e.mean, -0.0033333, 1e-6);
  EXPECT_FALSE(e.significant());
}

TEST(StatsTest, OnePairHasAnUnboundedInterval) {
  std::vector<double> a = {0.2}, b = {0.1};
  PairedDiff d = PairedDifference(a, b);
  EXPECT_NEAR(d.mean, 0.1, 1e-12);
  EXPECT_TRUE(std::isinf(d.low) && std::isinf(d.high));
  EXPECT_FALSE(d.significant());
  EXPECT_EQ(PairedDifference({}, {}).pairs, 0u);
}

}  // namespace
}  // namespace mixcal::calib
