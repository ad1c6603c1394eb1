// A report's own checks (internal/report_checks.h): impossible metrics,
// bins and splits are refused naming the field, and nothing is stored.

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "tests/storage/store_fixture.h"

namespace mixcal::storage {
namespace {

class ReportChecksTest : public StoreTest {};

TEST_F(ReportChecksTest, ReportValidationNamesTheField) {
  store_->sweeps().CreateSweep(Spec("v", 1)).IgnoreError();
  Assignment a = Acquire(Worker());
  v1::EpochMetrics m = Metrics(0, "test", 0.1);
  absl::Status s = store_->reports().ReportEpoch(a.lease, {m});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("metrics[0].epoch"), std::string::npos) << s;
  m = Metrics(1, "Test Split!", 0.1);
  s = store_->reports().ReportEpoch(a.lease, {m});
  EXPECT_NE(s.message().find("metrics[0].split"), std::string::npos) << s;
  EXPECT_EQ(CountRows(""), 0);
}

TEST_F(ReportChecksTest, BadBinsAreRefusedNamingTheBin) {
  store_->sweeps().CreateSweep(Spec("badbins", 1)).IgnoreError();
  Assignment a = Acquire(Worker());
  v1::EpochMetrics m = Metrics(1, "test", 0.1);
  m.mutable_bins(3)->set_correct(5);  // more correct than examples
  absl::Status s = store_->reports().ReportEpoch(a.lease, {m});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("metrics[0].bins[3]"), std::string::npos) << s;
  m = Metrics(1, "test", 0.1);
  m.mutable_bins(14)->set_confidence_sum(std::nan(""));
  s = store_->reports().ReportEpoch(a.lease, {m});
  EXPECT_NE(s.message().find("metrics[0].bins[14]"), std::string::npos) << s;
  EXPECT_EQ(CountRows(""), 0);
}

TEST_F(ReportChecksTest, ImpossibleMetricsAreRefusedNamingTheFieldAndRange) {
  store_->sweeps().CreateSweep(Spec("badmetrics", 1)).IgnoreError();
  Assignment a = Acquire(Worker());
  struct Case {
    const char* field;
    std::function<void(v1::EpochMetrics*)> spoil;
  };
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<Case> cases = {
      {"metrics[0].accuracy", [](auto* m) { m->set_accuracy(-5); }},
      {"metrics[0].ece", [](auto* m) { m->set_ece(1.5); }},
      {"metrics[0].nll", [&](auto* m) { m->set_nll(inf); }},
      {"metrics[0].brier", [](auto* m) { m->set_brier(std::nan("")); }},
      {"metrics[0].temperature", [](auto* m) { m->set_temperature(-1); }},
      {"metrics[0].auroc", [](auto* m) { m->set_auroc(2); }},
      {"metrics[0].lr", [&](auto* m) { m->set_lr(-inf); }},
      {"metrics[0].count", [](auto* m) { m->set_count(-1); }},
      // Two bins of INT64_MAX once summed to a negative count.
      {"metrics[0].bins[0].count",
       [](auto* m) {
         m->mutable_bins(0)->set_count(INT64_MAX);
         m->mutable_bins(1)->set_count(INT64_MAX);
       }},
      // The bins must account for the split's examples.
      {"metrics[0].bins must add up to count 100",
       [](auto* m) { m->mutable_bins(14)->set_count(99); }},
  };
  for (const Case& c : cases) {
    v1::EpochMetrics m = Metrics(1, "test", 0.1);
    c.spoil(&m);
    absl::Status s = store_->reports().ReportEpoch(a.lease, {m});
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_NE(s.message().find(c.field), std::string::npos) << s;
  }
  EXPECT_EQ(CountRows(""), 0);
  // A negative training loss is possible (ERL) and accepted.
  v1::EpochMetrics ok = Metrics(1, "test", 0.1);
  ok.set_train_loss(-0.25);
  EXPECT_TRUE(store_->reports().ReportEpoch(a.lease, {ok}).ok());
}

TEST_F(ReportChecksTest, MoreMetricsHoldOnlyTableMetricsWithoutAFieldOfTheirOwn) {
  store_->sweeps().CreateSweep(Spec("more", 1)).IgnoreError();
  Assignment a = Acquire(Worker());
  for (const char* name : {"bogus", "ece"}) {
    v1::EpochMetrics m = Metrics(1, "test", 0.1);
    (*m.mutable_more_metrics())[name] = 0.5;
    const absl::Status s = store_->reports().ReportEpoch(a.lease, {m});
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_NE(s.message().find(absl::StrCat("more_metrics holds \"", name)),
              std::string::npos)
        << s;
  }
  EXPECT_EQ(CountRows("test"), 0);
}

}  // namespace
}  // namespace mixcal::storage
