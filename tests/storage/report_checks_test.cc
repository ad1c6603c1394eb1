// A report's own checks (internal/report_checks.h): impossible metrics,
// bins and splits are refused naming the field, and nothing is stored.

#include <cmath>
#include <cstdint>
#include <filesystem>
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

// Reports are checked against their job: its epochs (3 here), in order,
// and success only with every epoch stored.
TEST_F(ReportChecksTest, EpochsOutsideTheJobOrOutOfOrderAreRefused) {
  store_->sweeps().CreateSweep(Spec("epochs", 1)).IgnoreError();
  Assignment a = Acquire(Worker());
  absl::Status s =
      store_->reports().ReportEpoch(a.lease, {Metrics(7, "test", 0.1)});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("[1, 3]"), std::string::npos) << s;
  // Epoch 3 before 1 and 2: not stored.
  s = store_->reports().ReportEpoch(a.lease, {Metrics(3, "test", 0.1)});
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(CountRows("test"), 0);
  auto job = store_->sweeps().GetJob(a.job.id());
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->last_epoch(), 0u);
}

TEST_F(ReportChecksTest, SuccessNeedsEveryEpochStored) {
  store_->sweeps().CreateSweep(Spec("finish", 1)).IgnoreError();
  Assignment a = Acquire(Worker());
  auto done = store_->reports().FinishJob(a.lease, v1::SUCCEEDED, "");
  EXPECT_EQ(done.status().code(), absl::StatusCode::kInvalidArgument)
      << done.status();
  EXPECT_NE(done.status().message().find("1..3"), std::string::npos)
      << done.status();
  ASSERT_TRUE(
      store_->reports().ReportEpoch(a.lease, {Metrics(1, "test", 0.1)}).ok());
  ASSERT_TRUE(
      store_->reports().ReportEpoch(a.lease, {Metrics(2, "test", 0.1)}).ok());
  EXPECT_FALSE(store_->reports().FinishJob(a.lease, v1::SUCCEEDED, "").ok());
  EXPECT_EQ(store_->sweeps().GetJob(a.job.id())->state(), v1::RUNNING);
  ASSERT_TRUE(
      store_->reports().ReportEpoch(a.lease, {Metrics(3, "test", 0.1)}).ok());
  done = store_->reports().FinishJob(a.lease, v1::SUCCEEDED, "");
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(*done, v1::SUCCEEDED);
  // A failure needs no epochs.
  store_->sweeps().CreateSweep(Spec("fails", 1)).IgnoreError();
  Assignment b = Acquire(Worker());
  EXPECT_TRUE(store_->reports().FinishJob(b.lease, v1::FAILED, "x").ok());
}

// An epoch's report with `rows` kept test predictions beside its metrics
// (the test split of `count` examples).
v1::ReportEpochRequest WithPredictions(const v1::Lease& lease, uint32_t epoch,
                                       uint32_t count, int rows) {
  v1::ReportEpochRequest r;
  *r.mutable_lease() = lease;
  v1::EpochMetrics m = Metrics(epoch, "test", 0.1);
  m.set_count(count);
  m.mutable_bins(14)->set_count(count);
  m.mutable_bins(14)->set_confidence_sum(0.97 * count);
  m.mutable_bins(14)->set_correct(static_cast<uint32_t>(0.9 * count));
  *r.add_metrics() = m;
  *r.add_predictions() = MakePredictions(epoch, rows, 0.8f, 0);
  return r;
}

TEST_F(ReportChecksTest, KeptPredictionsOnlyWhereAndAsThePolicyKeepsThem) {
  const std::string file = path_ + ".predictions";
  auto file_bytes = [&] {
    std::error_code ec;
    const auto n = std::filesystem::file_size(file, ec);
    return ec ? uintmax_t{0} : n;
  };
  // Policy none: never.
  v1::SweepSpec none = Spec("none", 1);
  none.mutable_evaluation()->set_predictions("none");
  store_->sweeps().CreateSweep(none).IgnoreError();
  Assignment a = Acquire(Worker());
  const uintmax_t before = file_bytes();
  v1::ReportEpochRequest r = WithPredictions(a.lease, 1, 30, 30);
  absl::Status s = store_->reports().ReportEpoch(r);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("predictions[0]"), std::string::npos) << s;
  EXPECT_NE(s.message().find("none"), std::string::npos) << s;
  // (Through PrepareReport, as the report stream does: nothing appended.)
  v1::WorkerReport w;
  *w.mutable_epoch() = r;
  PreparedReport p = store_->reports().PrepareReport(&w);
  EXPECT_TRUE(p.checked.ok()) << p.checked;
  EXPECT_FALSE(p.in_file());
  const v1::WorkerReport* one = &w;
  const PreparedReport* prep = &p;
  EXPECT_FALSE(store_->reports().StoreReports({&one, 1}, {&prep, 1})[0]
                   .status.ok());
  EXPECT_EQ(file_bytes(), before);
  EXPECT_EQ(CountRows("test"), 0);

  // Policy final (of 3 epochs): only at epoch 3, and of the test split's
  // size.
  v1::SweepSpec final_only = Spec("final", 1);
  final_only.mutable_evaluation()->set_predictions("final");
  store_->sweeps().CreateSweep(final_only).IgnoreError();
  Assignment b = Acquire(Worker());
  s = store_->reports().ReportEpoch(WithPredictions(b.lease, 1, 30, 30));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("epoch 1 is not one of them"), std::string::npos)
      << s;
  ASSERT_TRUE(
      store_->reports().ReportEpoch(b.lease, {Metrics(1, "test", 0.1)}).ok());
  ASSERT_TRUE(
      store_->reports().ReportEpoch(b.lease, {Metrics(2, "test", 0.1)}).ok());
  // 70 rows where the test split has 100.
  s = store_->reports().ReportEpoch(WithPredictions(b.lease, 3, 100, 70));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("size 100"), std::string::npos) << s;
  // A test split whose size changed from the earlier epochs'.
  s = store_->reports().ReportEpoch(WithPredictions(b.lease, 3, 70, 70));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("metrics[0].count"), std::string::npos) << s;
  EXPECT_EQ(file_bytes(), before);
  s = store_->reports().ReportEpoch(WithPredictions(b.lease, 3, 100, 100));
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_GT(file_bytes(), before);
}

// A job's kept predictions resent again and again (each append grows the
// file) are refused past the job's bound.
TEST_F(ReportChecksTest, ResentPredictionsStopAtTheJobsBound) {
  v1::SweepSpec spec = Spec("resent", 1);
  spec.mutable_evaluation()->set_predictions("final");
  store_->sweeps().CreateSweep(spec).IgnoreError();
  Assignment a = Acquire(Worker());
  // A test split of 20,000 examples.
  auto metrics = [](uint32_t epoch) {
    v1::EpochMetrics m = Metrics(epoch, "test", 0.1);
    m.set_count(20000);
    m.mutable_bins(14)->set_count(20000);
    m.mutable_bins(14)->set_confidence_sum(0.97 * 20000);
    m.mutable_bins(14)->set_correct(18000);
    return m;
  };
  ASSERT_TRUE(store_->reports().ReportEpoch(a.lease, {metrics(1)}).ok());
  ASSERT_TRUE(store_->reports().ReportEpoch(a.lease, {metrics(2)}).ok());
  // 20,000 x 100 values: 4.1 MB a report; the bound is 8 times what the
  // policy keeps (one epoch) plus 64 MiB, about 97 MB: refused by the
  // 24th send at the latest.
  v1::ReportEpochRequest r;
  *r.mutable_lease() = a.lease;
  *r.add_metrics() = metrics(3);
  v1::Predictions* p = r.add_predictions();
  p->set_epoch(3);
  p->set_split("test");
  p->set_count(20000);
  p->set_classes(100);
  p->set_probabilities(
      calib::EncodeProbabilities(std::vector<float>(20000 * 100, 0.01f)));
  p->set_labels(calib::EncodeLabels(std::vector<int32_t>(20000, 1)));
  int stored = 0;
  absl::Status s;
  for (int i = 0; i < 40 && s.ok(); ++i) {
    s = store_->reports().ReportEpoch(r);
    if (s.ok()) ++stored;
  }
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("bound"), std::string::npos) << s;
  EXPECT_GE(stored, 8);
  EXPECT_LE(stored, 24);
  EXPECT_LT(std::filesystem::file_size(path_ + ".predictions"), 110u << 20);
}

}  // namespace
}  // namespace mixcal::storage
