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

TEST(MetricTableTest, RegisterRefusesBadNamesAndKeepsSummarizedFirst) {
  EXPECT_FALSE(RegisterMetric({"ece", false, true, true, "taken", 0, 1}).ok());
  EXPECT_FALSE(RegisterMetric({"Bad-Name", false, true, true, "x", 0, 1}).ok());
  EXPECT_FALSE(RegisterMetric({"", false, true, true, "x", 0, 1}).ok());
  EXPECT_FALSE(RegisterMetric({"backwards", false, true, true, "x", 1, 0}).ok());
  ASSERT_TRUE(RegisterMetric({"added_here", false, true, true, "x", 0, 1}).ok());
  ASSERT_NE(FindMetric("added_here"), nullptr);
  bool seen_unsummarized = false;
  for (const Metric& m : Metrics()) {
    if (!m.summarized) seen_unsummarized = true;
    EXPECT_FALSE(m.summarized && seen_unsummarized) << m.name;
  }
}

TEST(MetricValuesTest, AbsentUntilSetByNameOrRow) {
  MetricValues v;
  EXPECT_FALSE(v.Get("ece").has_value());
  v.Set("ece", 0.25);
  v.Set(*FindMetric("auroc"), 0.75);
  EXPECT_EQ(v.Get("ece"), 0.25);
  EXPECT_EQ(v.Get(*FindMetric("auroc")), 0.75);
  EXPECT_FALSE(v.Get("nll").has_value());
  EXPECT_DEATH(v.Set("no_such_metric", 1), "no metric no_such_metric");
}

}  // namespace
}  // namespace mixcal::calib
