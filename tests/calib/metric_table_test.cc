#include "calib/metric_table.h"

#include <set>

#include "gtest/gtest.h"

namespace mixcal::calib {
namespace {

TEST(MetricTableTest, NamesAreUniqueAndSummarizedComeFirst) {
  std::set<std::string> names;
  bool seen_unsummarized = false;
  for (const Metric& m : Metrics()) {
    EXPECT_TRUE(names.insert(m.name).second) << m.name;
    if (!m.summarized) seen_unsummarized = true;
    EXPECT_FALSE(m.summarized && seen_unsummarized) << m.name;
  }
}

TEST(MetricTableTest, FindIsExactNotBySubstring) {
  ASSERT_NE(FindMetric("ece"), nullptr);
  EXPECT_FALSE(FindMetric("ece")->higher_is_better);
  EXPECT_TRUE(FindMetric("accuracy")->higher_is_better);
  EXPECT_EQ(FindMetric("e"), nullptr);
  EXPECT_EQ(FindMetric("ec"), nullptr);
  EXPECT_EQ(FindMetric("ECE"), nullptr);
  EXPECT_EQ(FindMetric(""), nullptr);
}

TEST(MetricTableTest, ParseRefusesUnknownNamesListingTheKnownOnes) {
  absl::StatusOr<const Metric*> m = ParseMetric("e", "--metric");
  ASSERT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("--metric must be one of accuracy|ece|"),
            std::string::npos)
      << m.status();
  EXPECT_NE(m.status().message().find("got \"e\""), std::string::npos);
  // Not summarized: refused where only summarized metrics count.
  EXPECT_TRUE(ParseMetric("lr", "--metric").ok());
  EXPECT_FALSE(ParseMetric("lr", "at.best_by", true).ok());
}

TEST(MetricTableTest, TheSummaryListIsThePapersTable) {
  EXPECT_EQ(MetricNames(true),
            "accuracy|ece|oe|mce|nll|brier|adaptive_ece|mean_confidence|"
            "mean_entropy|temperature|auroc|classwise_ece|l2_ce_debiased|"
            "brier_reliability|brier_resolution|brier_uncertainty|aurc|ece_low|"
            "ece_high|mmce|tace|rmsce|smece|fpr95|"
            "aupr|train_loss");
}

}  // namespace
}  // namespace mixcal::calib
