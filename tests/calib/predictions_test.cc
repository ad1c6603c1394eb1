// The stored form of predictions: IEEE binary16 against values from the
// standard (and numpy.float16), the byte layout, and metrics of
// probabilities against values computed by hand.

#include "calib/predictions.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace mixcal::calib {
namespace {

TEST(Float16Test, KnownBitPatterns) {
  // IEEE 754-2008 binary16; numpy.float16(x).view(numpy.uint16) agrees.
  EXPECT_EQ(FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalf(0.5f), 0x3800);
  EXPECT_EQ(FloatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(FloatToHalf(0.1f), 0x2e66);
  EXPECT_EQ(FloatToHalf(1.0f / 3.0f), 0x3555);
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7bff);       // largest finite
  EXPECT_EQ(FloatToHalf(65536.0f), 0x7c00);       // overflows to infinity
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -14)), 0x0400);  // smallest normal
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(FloatToHalf(0.0f), 0x0000);
  // Ties go to even: 1 + 2^-11 lies halfway between 1 and 1 + 2^-10.
  EXPECT_EQ(FloatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(FloatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -25)), 0x0000);      // 0.5 ulp -> 0
  EXPECT_EQ(FloatToHalf(3 * std::ldexp(1.0f, -25)), 0x0002);  // 1.5 ulp -> 2
  EXPECT_EQ(HalfToFloat(0x3c00), 1.0f);
  EXPECT_EQ(HalfToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(HalfToFloat(0x7bff), 65504.0f);
  EXPECT_TRUE(std::isinf(HalfToFloat(0x7c00)));
  // Every finite half survives the round trip.
  for (uint32_t h = 0; h < 0x7c00; ++h)
    ASSERT_EQ(FloatToHalf(HalfToFloat(static_cast<uint16_t>(h))), h) << h;
}

TEST(PredictionsCodecTest, LittleEndianRowsAndCheckedSizes) {
  const std::vector<float> p = {1.0f, 0.0f, 0.5f, 0.5f};
  const std::string bytes = EncodeProbabilities(p);
  ASSERT_EQ(bytes.size(), 8u);
  EXPECT_EQ(static_cast<unsigned char>(bytes[0]), 0x00);
  EXPECT_EQ(static_cast<unsigned char>(bytes[1]), 0x3c);
  EXPECT_EQ(static_cast<unsigned char>(bytes[5]), 0x38);
  auto back = DecodeProbabilities(bytes, 2, 2);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, p);
  EXPECT_EQ(DecodeProbabilities(bytes, 2, 3).status().code(),
            absl::StatusCode::kDataLoss);
  const std::vector<int32_t> y = {1, 0};
  const std::string lb = EncodeLabels(y);
  ASSERT_EQ(lb.size(), 8u);
  EXPECT_EQ(lb[0], 1);
  EXPECT_EQ(*DecodeLabels(lb, 2, 2), y);
  auto bad = DecodeLabels(lb, 2, 1);  // label 1 is outside [0, 1)
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(bad.status().message().find("outside [0, 1)"), std::string::npos);
}

TEST(PredictionsCodecTest, CheckLabelsNamesTheFirstBadLabel) {
  EXPECT_TRUE(CheckLabels(EncodeLabels({0, 2, 1, 2}), 4, 3).ok());
  EXPECT_TRUE(CheckLabels("", 0, 3).ok());
  // -1 is a large unsigned value: caught, and named as -1.
  absl::Status neg = CheckLabels(EncodeLabels({0, 1, -1, 5}), 4, 3);
  EXPECT_EQ(neg.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(neg.message().find("label 2 is -1, outside [0, 3)"),
            std::string::npos)
      << neg.message();
  absl::Status big = CheckLabels(EncodeLabels({0, 1, 2, 3}), 4, 3);
  EXPECT_NE(big.message().find("label 3 is 3"), std::string::npos)
      << big.message();
  absl::Status size = CheckLabels(std::string(7, '\0'), 2, 3);
  EXPECT_NE(size.message().find("labels hold 7 bytes; 2 int32 labels need 8"),
            std::string::npos)
      << size.message();
}

TEST(ProbabilityMetricsTest, SmallCaseByHand) {
  // Three examples, two classes, 2 bins:
  //   p = (0.75, 0.25) label 0: correct, conf 0.75 (bin 2), nll -ln .75
  //   p = (0.5, 0.5)   label 1: argmax 0 wrong, conf 0.5 (bin 1), nll -ln .5
  //   p = (0.25, 0.75) label 1: correct, conf 0.75 (bin 2), nll -ln .75
  const std::vector<float> p = {0.75f, 0.25f, 0.5f, 0.5f, 0.25f, 0.75f};
  const std::vector<int32_t> y = {0, 1, 1};
  ProbabilityMetrics m = MetricsOfProbabilities(p, y, 2, 2);
  EXPECT_EQ(m.count, 3);
  EXPECT_NEAR(m.accuracy, 2.0 / 3, 1e-12);
  EXPECT_NEAR(m.nll, (-2 * std::log(0.75) - std::log(0.5)) / 3, 1e-9);
  // Brier: (0.0625 + 0.0625) + (0.25 + 0.25) + (0.0625 + 0.0625) = 0.75 / 3.
  EXPECT_NEAR(m.brier, 0.25, 1e-9);
  // Bin 1: conf 0.5, acc 0 (1 example); bin 2: conf 0.75, acc 1 (2).
  // ECE = 1/3 * 0.5 + 2/3 * 0.25 = 1/3; MCE 0.5; OE = 1/3 * 0.5 * 0.5.
  EXPECT_NEAR(m.ece, 1.0 / 3, 1e-9);
  EXPECT_NEAR(m.mce, 0.5, 1e-9);
  EXPECT_NEAR(m.oe, 1.0 / 12, 1e-9);
  EXPECT_NEAR(m.mean_confidence, (0.75 + 0.5 + 0.75) / 3, 1e-9);
  const double h75 = -(0.75 * std::log(0.75) + 0.25 * std::log(0.25));
  EXPECT_NEAR(m.mean_entropy, (2 * h75 + std::log(2.0)) / 3, 1e-9);
  ASSERT_EQ(m.bins.size(), 2u);
  EXPECT_EQ(m.bins[0].count, 1);
  EXPECT_EQ(m.bins[1].correct, 2);
}

}  // namespace
}  // namespace mixcal::calib
