// Golden values from reference/methods-and-metrics.md ("Golden cases").

#include "calib/metrics.h"

#include <vector>

#include "gtest/gtest.h"

namespace mixcal::calib {
namespace {

struct Golden {
  std::vector<float> confidence;
  std::vector<uint8_t> correct;
  int bins;
  double ece, mce, oe;
};

class GoldenTest : public ::testing::TestWithParam<Golden> {};

TEST_P(GoldenTest, MatchesReference) {
  const Golden& g = GetParam();
  std::vector<ReliabilityBin> bins =
      BinConfidences(g.confidence, g.correct, g.bins);
  Calibration c = CalibrationFromBins(bins);
  EXPECT_NEAR(c.ece, g.ece, 1e-6);
  EXPECT_NEAR(c.mce, g.mce, 1e-6);
  EXPECT_NEAR(c.oe, g.oe, 1e-6);
}

INSTANTIATE_TEST_SUITE_P(
    Reference, GoldenTest,
    ::testing::Values(
        Golden{{0.4f, 0.5f, 0.6f}, {1, 1, 0}, 2, 0.566667, 0.600000, 0.120000},
        Golden{{0.95f, 1.0f}, {1, 0}, 2, 0.475000, 0.475000, 0.463125},
        Golden{{0.55f, 0.55f, 0.60f, 0.90f},
               {0, 0, 1, 1},
               3,
               0.200000,
               0.233333,
               0.099167}));

TEST(BinIndexTest, UpperEdgeBelongsToLowerBin) {
  // Bins are (lo, hi]: 0.5 with 2 bins is in bin 1, 1.0 in the last bin,
  // and 0 in bin 1.
  EXPECT_EQ(BinIndex(0.5, 2), 1);
  EXPECT_EQ(BinIndex(0.5000001, 2), 2);
  EXPECT_EQ(BinIndex(1.0, 2), 2);
  EXPECT_EQ(BinIndex(0.0, 15), 1);
  EXPECT_EQ(BinIndex(1.0, 15), 15);
  EXPECT_EQ(BinIndex(0.2, 10), 2);  // 0.2 as a double is just above 0.2
}

TEST(BinConfidencesTest, KeepsCountsSumsAndCorrect) {
  std::vector<float> conf = {0.1f, 0.2f, 0.9f, 0.95f, 0.3f};
  std::vector<uint8_t> ok = {0, 1, 1, 0, 1};
  std::vector<ReliabilityBin> bins = BinConfidences(conf, ok, 4);
  ASSERT_EQ(bins.size(), 4u);
  // (0, .25]: 0.1, 0.2; (.25, .5]: 0.3; (.5, .75]: none; (.75, 1]: 0.9, 0.95
  EXPECT_EQ(bins[0].count, 2);
  EXPECT_EQ(bins[0].correct, 1);
  EXPECT_NEAR(bins[0].confidence_sum, 0.3, 1e-6);
  EXPECT_EQ(bins[1].count, 1);
  EXPECT_EQ(bins[2].count, 0);
  EXPECT_EQ(bins[3].count, 2);
  EXPECT_EQ(bins[3].correct, 1);
}

TEST(CalibrationFromBinsTest, EmptyBinsAreZero) {
  Calibration c = CalibrationFromBins(std::vector<ReliabilityBin>(15));
  EXPECT_EQ(c.ece, 0);
  EXPECT_EQ(c.mce, 0);
  EXPECT_EQ(c.oe, 0);
}

TEST(CalibrationFromBinsTest, PerfectCalibrationIsZero) {
  // Half right at confidence 0.5, all right at confidence 1.
  std::vector<ReliabilityBin> bins(10);
  bins[4] = {4, 2.0, 2};
  bins[9] = {3, 3.0, 3};
  Calibration c = CalibrationFromBins(bins);
  EXPECT_NEAR(c.ece, 0, 1e-12);
  EXPECT_NEAR(c.mce, 0, 1e-12);
  EXPECT_NEAR(c.oe, 0, 1e-12);
}

TEST(AdaptiveEceTest, EqualMassGroupsByHand) {
  // 5 examples, 2 bins: groups of floor(5/2)=2 and 3 after sorting.
  // sorted conf: 0.2(0) 0.4(1) | 0.6(1) 0.8(0) 0.9(1)
  // group 1: conf 0.3, acc 0.5 -> |0.2| * 2/5 = 0.08
  // group 2: conf 0.7667, acc 0.6667 -> 0.1 * 3/5 = 0.06
  std::vector<float> conf = {0.9f, 0.2f, 0.6f, 0.4f, 0.8f};
  std::vector<uint8_t> ok = {1, 0, 1, 1, 0};
  EXPECT_NEAR(AdaptiveEce(conf, ok, 2), 0.14, 1e-6);
}

TEST(AdaptiveEceTest, MoreBinsThanExamplesSkipsEmptyGroups) {
  std::vector<float> conf = {0.7f, 0.9f};
  std::vector<uint8_t> ok = {1, 0};
  // Each example alone: |1-0.7|/2 + |0-0.9|/2 = 0.6
  EXPECT_NEAR(AdaptiveEce(conf, ok, 15), 0.6, 1e-6);
}

TEST(AurocTest, SeparatedTiedAndReversed) {
  std::vector<float> hi = {0.9f, 0.8f}, lo = {0.1f, 0.2f};
  EXPECT_DOUBLE_EQ(Auroc(hi, lo), 1.0);
  EXPECT_DOUBLE_EQ(Auroc(lo, hi), 0.0);
  std::vector<float> same = {0.5f, 0.5f};
  EXPECT_DOUBLE_EQ(Auroc(same, same), 0.5);  // ties count one half
  // pos {0.6, 0.4}, neg {0.4, 0.2}: pairs 0.6>0.4, 0.6>0.2, 0.4=0.4, 0.4>0.2
  std::vector<float> pos = {0.6f, 0.4f}, neg = {0.4f, 0.2f};
  EXPECT_DOUBLE_EQ(Auroc(pos, neg), 3.5 / 4);
}

}  // namespace
}  // namespace mixcal::calib
