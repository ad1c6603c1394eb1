// MetricReader: metric queries and pages, the summary over seeds (paired
// comparisons, seed ensembles), reliability bins, kept predictions, events.

#include <sqlite3.h>

#include <cmath>
#include <filesystem>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "tests/storage/store_fixture.h"

namespace mixcal::storage {
namespace {

class MetricReaderTest : public StoreTest {};

TEST_F(MetricReaderTest, QueryMetricsFiltersAndPages) {
  auto sweep = store_->sweeps().CreateSweep(
      Spec("query", 2));  // baseline s0 s1, mixup s0 s1
  int64_t w = Worker();
  for (int j = 0; j < 4; ++j) {
    Assignment a = Acquire(w);
    for (uint32_t e = 1; e <= 3; ++e) {
      ASSERT_TRUE(
          store_->reports()
              .ReportEpoch(a.lease, {Metrics(e, "test", 0.01 * e + 0.1 * j),
                                     Metrics(e, "test_ts", 0.001)})
              .ok());
    }
  }
  v1::MetricsFilter f;
  f.set_sweep_id(sweep->id());
  std::string token;
  EXPECT_EQ(store_->metrics().QueryMetrics(f, &token)->size(), 24u);
  f.set_method("mixup");
  f.set_split("test");
  f.set_epoch_min(2);
  auto rows = store_->metrics().QueryMetrics(f, &token);
  ASSERT_EQ(rows->size(), 4u);  // 2 jobs x epochs 2..3
  EXPECT_EQ((*rows)[0].method(), "mixup");
  EXPECT_EQ((*rows)[0].epoch(), 2u);
  EXPECT_DOUBLE_EQ((*rows)[0].value(), 0.2);
  f.clear_method();
  f.add_seeds(1);
  EXPECT_EQ(store_->metrics().QueryMetrics(f, &token)->size(),
            4u);  // seed 1 of both methods
  // Pages of 5 cover all 24 rows exactly once.
  v1::MetricsFilter all;
  all.set_sweep_id(sweep->id());
  all.set_page_size(5);
  int total = 0, pages = 0;
  std::set<std::tuple<int64_t, uint32_t, std::string>> seen;
  do {
    rows = store_->metrics().QueryMetrics(all, &token);
    ASSERT_TRUE(rows.ok()) << rows.status();
    for (const auto& r : *rows) seen.insert({r.job_id(), r.epoch(), r.split()});
    total += rows->size();
    ++pages;
    all.set_page_token(token);
  } while (!token.empty());
  EXPECT_EQ(total, 24);
  EXPECT_EQ(seen.size(), 24u);
  EXPECT_EQ(pages, 5);
  all.set_page_token("garbage");
  EXPECT_EQ(store_->metrics().QueryMetrics(all, &token).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(MetricReaderTest, LatestOnlyReadsEachJobsNewestEpochAndCountsSumEpochs) {
  auto sweep = store_->sweeps().CreateSweep(Spec("latest", 2, /*epochs=*/4));  // 4 jobs
  ASSERT_TRUE(sweep.ok());
  int64_t w = Worker();
  // Job j stores epochs 1..j+1.
  for (int j = 0; j < 4; ++j) {
    Assignment a = Acquire(w);
    for (uint32_t e = 1; e <= static_cast<uint32_t>(j + 1); ++e)
      ASSERT_TRUE(store_->reports()
                      .ReportEpoch(a.lease, {Metrics(e, "test", 0.1 * e)})
                      .ok());
  }
  v1::MetricsFilter f;
  f.set_sweep_id(sweep->id());
  f.set_latest_only(true);
  std::string token;
  auto rows = store_->metrics().QueryMetrics(f, &token);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 4u);
  for (size_t j = 0; j < 4; ++j) {
    EXPECT_EQ((*rows)[j].epoch(), j + 1);
    EXPECT_NEAR((*rows)[j].ece(), 0.1 * (j + 1), 1e-12);
  }
  auto s = store_->sweeps().GetSweep(sweep->id());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->counts().epochs_done(), 1u + 2 + 3 + 4);
}

TEST_F(MetricReaderTest, MetricsBeyondEceAndTheirEstimatorsRoundTrip) {
  store_->sweeps().CreateSweep(Spec("more", 1)).IgnoreError();
  Assignment a = Acquire(Worker());
  v1::EpochMetrics m = Metrics(1, "test", 0.1);
  m.set_classwise_ece(0.03);
  m.set_l2_ce_debiased(0.04);
  m.set_brier_reliability(0.01);
  m.set_brier_resolution(0.02);
  m.set_brier_uncertainty(0.09);
  m.set_aurc(0.05);
  m.set_estimators("bins=15 equal-width");
  v1::EpochMetrics noise = Metrics(1, "noise", 0);
  noise.clear_bins();
  noise.set_fpr95(0.5);
  noise.set_aupr(0.8);
  ASSERT_TRUE(store_->reports().ReportEpoch(a.lease, {m, noise}).ok());
  v1::MetricsFilter f;
  f.add_job_ids(a.lease.job_id());
  std::string token;
  auto rows = store_->metrics().QueryMetrics(f, &token);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u);
  const v1::EpochMetrics& n = (*rows)[0];  // "noise" < "test"
  const v1::EpochMetrics& t = (*rows)[1];
  EXPECT_DOUBLE_EQ(t.classwise_ece(), 0.03);
  EXPECT_DOUBLE_EQ(t.l2_ce_debiased(), 0.04);
  EXPECT_DOUBLE_EQ(t.brier_uncertainty(), 0.09);
  EXPECT_DOUBLE_EQ(t.aurc(), 0.05);
  EXPECT_EQ(t.estimators(), "bins=15 equal-width");
  EXPECT_FALSE(t.has_fpr95());
  EXPECT_DOUBLE_EQ(n.fpr95(), 0.5);
  EXPECT_DOUBLE_EQ(n.aupr(), 0.8);
  EXPECT_FALSE(n.has_classwise_ece());
  // Out of range: refused, naming the field.
  m.set_epoch(2);
  m.set_aurc(1.5);
  absl::Status st = store_->reports().ReportEpoch(a.lease, {m});
  EXPECT_NE(st.message().find("metrics[0].aurc"), std::string::npos) << st;
}

TEST_F(MetricReaderTest, PredictionsComeBackBitForBitAndBadOnesAreRefused) {
  store_->sweeps().CreateSweep(Spec("pred", 1)).IgnoreError();
  Assignment a = Acquire(Worker());
  StoreEpochs(a.lease, 2);
  v1::ReportEpochRequest r;
  *r.mutable_lease() = a.lease;
  *r.add_metrics() = Metrics(3, "test", 0.1);
  *r.add_predictions() = MakePredictions(3, 100, 0.8f, 0);
  // Each label's float32 log-probability, beside the float16 rows: one so
  // small that float16 holds 0 for it.
  std::vector<float> log_p(100, std::log(0.8f));
  log_p[7] = -40.0f;
  r.mutable_predictions(0)->set_label_log_probs(
      std::string(reinterpret_cast<const char*>(log_p.data()), 4 * 100));
  ASSERT_TRUE(store_->reports().ReportEpoch(r).ok());
  auto got = store_->metrics().GetPredictions(a.lease.job_id(), 0, "");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->label_log_probs(), r.predictions(0).label_log_probs());
  EXPECT_EQ(got->labels().size(), 400u);
  EXPECT_EQ(got->epoch(), 3u);
  EXPECT_EQ(got->count(), 100u);
  EXPECT_EQ(got->classes(), 3u);
  EXPECT_EQ(got->probabilities(), r.predictions(0).probabilities());
  EXPECT_EQ(got->labels(), r.predictions(0).labels());
  auto none = store_->metrics().GetPredictions(a.lease.job_id(), 2, "test");
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(none.status().message().find("epochs kept: 3"), std::string::npos)
      << none.status();
  // Sizes that do not match, labels outside the classes, another epoch:
  // refused whole, nothing stored.
  v1::ReportEpochRequest bad = r;
  bad.mutable_metrics(0)->set_epoch(4);
  *bad.mutable_predictions(0) = MakePredictions(4, 7, 0.8f, 0);
  bad.mutable_predictions(0)->mutable_probabilities()->pop_back();
  auto st = store_->reports().ReportEpoch(bad);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("predictions[0].probabilities"),
            std::string::npos)
      << st;
  *bad.mutable_predictions(0) = MakePredictions(4, 7, 0.8f, 0);
  bad.mutable_predictions(0)->set_classes(2);
  bad.mutable_predictions(0)->set_probabilities(std::string(28, '\0'));
  EXPECT_NE(store_->reports().ReportEpoch(bad).message().find("outside [0, 2)"),
            std::string::npos);
  *bad.mutable_predictions(0) = MakePredictions(4, 7, 0.8f, 0);
  bad.mutable_predictions(0)->set_label_log_probs(std::string(12, '\0'));
  EXPECT_NE(store_->reports().ReportEpoch(bad).message().find(
                "predictions[0].label_log_probs must hold 28 bytes"),
            std::string::npos);
  *bad.mutable_predictions(0) = MakePredictions(5, 7, 0.8f, 0);
  EXPECT_NE(store_->reports().ReportEpoch(bad).message().find(
                "must be the metrics' epoch 4"),
            std::string::npos);
  EXPECT_EQ(store_->metrics()
                .GetPredictions(a.lease.job_id(), 4, "test")
                .status()
                .code(),
            absl::StatusCode::kNotFound);
}

TEST_F(MetricReaderTest, SeedEnsembleAveragesTheKeptProbabilities) {
  auto sweep =
      store_->sweeps().CreateSweep(Spec("ens", 3));  // baseline x3, mixup x3
  ASSERT_TRUE(sweep.ok());
  int64_t w = Worker();
  // Baseline: three identical seeds. Mixup: seeds that put 0.9 on classes
  // shifted by 0, 1, 2: their average is uniform except... see below.
  for (int j = 0; j < 6; ++j) {
    Assignment a = Acquire(w);
    v1::ReportEpochRequest r;
    *r.mutable_lease() = a.lease;
    *r.add_metrics() = Metrics(1, "test", 0.1);
    *r.add_predictions() = j < 3 ? MakePredictions(1, 100, 0.8f, 0)
                                 : MakePredictions(1, 100, 0.6f, j - 3);
    ASSERT_TRUE(store_->reports().ReportEpoch(r).ok());
  }
  v1::SummaryPoint final_point;
  final_point.set_final(true);
  auto rows =
      store_->metrics().SummarizeSweep(sweep->id(), final_point, "", "", true);
  ASSERT_TRUE(rows.ok()) << rows.status();
  std::vector<v1::SummaryRow> ens;
  for (const auto& r : *rows)
    if (r.ensemble()) ens.push_back(r);
  ASSERT_EQ(ens.size(), 2u);
  auto stat = [](const v1::SummaryRow& r, const std::string& m) {
    for (const auto& s : r.stats())
      if (s.metric() == m) return s.mean();
    return -1.0;
  };
  // Identical seeds: the ensemble is each seed (0.8 on the label, always
  // right: accuracy 1, NLL -ln 0.8 in float16, ECE 1 - 0.8).
  const calib::ProbabilityMetrics one = calib::MetricsOfProbabilities(
      *calib::DecodeProbabilities(
          MakePredictions(1, 100, 0.8f, 0).probabilities(), 100, 3),
      *calib::DecodeLabels(MakePredictions(1, 100, 0.8f, 0).labels(), 100, 3), 3,
      15);
  EXPECT_EQ(ens[0].method(), "baseline");
  EXPECT_EQ(ens[0].seeds(), 3u);
  EXPECT_DOUBLE_EQ(stat(ens[0], "accuracy"), one.accuracy);
  EXPECT_DOUBLE_EQ(stat(ens[0], "nll"), one.nll);
  EXPECT_DOUBLE_EQ(stat(ens[0], "ece"), one.ece);
  EXPECT_DOUBLE_EQ(stat(ens[0], "brier"), one.brier);
  EXPECT_NEAR(stat(ens[0], "ece"), 0.2, 1e-3);
  // Mixup: each class gets 0.6 from one seed and 0.2 from two: the average
  // is 1/3 everywhere (float16 0.6 and 0.2 average to 0.33341...), so the
  // ensemble is as unsure as can be: confidence 1/3, NLL ln 3.
  EXPECT_EQ(ens[1].method(), "mixup");
  EXPECT_NEAR(stat(ens[1], "mean_confidence"), 1.0 / 3, 1e-3);
  EXPECT_NEAR(stat(ens[1], "nll"), std::log(3.0), 1e-3);
  EXPECT_NEAR(stat(ens[1], "mean_entropy"), std::log(3.0), 1e-3);
}

// One seed's kept predictions damaged (their bytes cut off the end of the
// predictions file): the ensemble of its configuration averages the other
// seeds and names the one left out; the other configurations are whole.
TEST_F(MetricReaderTest, SeedEnsembleLeavesOutADamagedSeedAndSaysSo) {
  auto sweep = store_->sweeps().CreateSweep(Spec("ens-damaged", 2));
  ASSERT_TRUE(sweep.ok());
  const int64_t w = Worker();
  int64_t last_job = 0;
  std::string last_method;
  for (int j = 0; j < 4; ++j) {
    Assignment a = Acquire(w);
    v1::ReportEpochRequest r;
    *r.mutable_lease() = a.lease;
    *r.add_metrics() = Metrics(1, "test", 0.1);
    *r.add_predictions() = MakePredictions(1, 100, 0.8f, j);
    ASSERT_TRUE(store_->reports().ReportEpoch(r).ok());
    last_job = a.job.id();
    last_method = a.job.method();
  }
  const std::string file = path_ + ".predictions";
  std::filesystem::resize_file(file, std::filesystem::file_size(file) - 10);
  v1::SummaryPoint final_point;
  final_point.set_final(true);
  auto rows =
      store_->metrics().SummarizeSweep(sweep->id(), final_point, "", "", true);
  ASSERT_TRUE(rows.ok()) << rows.status();
  int ensembles = 0;
  for (const v1::SummaryRow& r : *rows) {
    if (!r.ensemble()) continue;
    ++ensembles;
    if (r.method() == last_method) {
      EXPECT_EQ(r.seeds(), 1u);
      ASSERT_EQ(r.left_out_size(), 1);
      EXPECT_NE(r.left_out(0).find("job " + std::to_string(last_job)),
                std::string::npos)
          << r.left_out(0);
    } else {
      EXPECT_EQ(r.seeds(), 2u);
      EXPECT_EQ(r.left_out_size(), 0);
    }
  }
  EXPECT_EQ(ensembles, 2);
}

// Seeds whose test sets differ (synthetic data is drawn per seed) have no
// ensemble, and the row says so instead of the ensemble being left out
// silently.
TEST_F(MetricReaderTest, SeedsWithDifferentTestSetsGetNoEnsembleAndAReason) {
  auto sweep = store_->sweeps().CreateSweep(Spec("ens-different", 2));
  ASSERT_TRUE(sweep.ok());
  const int64_t w = Worker();
  for (int j = 0; j < 4; ++j) {
    Assignment a = Acquire(w);
    v1::ReportEpochRequest r;
    *r.mutable_lease() = a.lease;
    *r.add_metrics() = Metrics(1, "test", 0.1);
    v1::Predictions p = MakePredictions(1, 100, 0.8f, 0);
    if (a.job.seed() == 1) {  // the second seed's labels: another test set
      std::vector<int32_t> y;
      for (int i = 0; i < 100; ++i) y.push_back((i + 1) % 3);
      p.set_labels(calib::EncodeLabels(y));
    }
    *r.add_predictions() = p;
    ASSERT_TRUE(store_->reports().ReportEpoch(r).ok());
  }
  v1::SummaryPoint final_point;
  final_point.set_final(true);
  auto rows =
      store_->metrics().SummarizeSweep(sweep->id(), final_point, "", "", true);
  ASSERT_TRUE(rows.ok()) << rows.status();
  int ensembles = 0;
  for (const v1::SummaryRow& r : *rows) {
    if (!r.ensemble()) continue;
    ++ensembles;
    EXPECT_EQ(r.stats_size(), 0);
    ASSERT_EQ(r.left_out_size(), 1);
    EXPECT_NE(r.left_out(0).find("different test sets"), std::string::npos)
        << r.left_out(0);
  }
  EXPECT_EQ(ensembles, 2);
}

TEST_F(MetricReaderTest, SummaryIsMeanStdCountOverSeeds) {
  auto sweep = store_->sweeps().CreateSweep(
      Spec("summary", 3));  // baseline x3, mixup x3
  int64_t w = Worker();
  // ECE per (job, epoch): job j epoch e -> 0.1 * (j+1) / e.
  for (int j = 0; j < 6; ++j) {
    Assignment a = Acquire(w);
    for (uint32_t e = 1; e <= 3; ++e) {
      v1::EpochMetrics m = Metrics(e, "test", 0.1 * (j + 1) / e);
      m.set_accuracy(0.5 + 0.1 * e);
      ASSERT_TRUE(store_->reports().ReportEpoch(a.lease, {m}).ok());
    }
  }
  // Jobs 0-2 are baseline seeds 0-2 (fair turns inside one sweep = age order).
  v1::SummaryPoint final_point;
  final_point.set_final(true);
  auto rows =
      store_->metrics().SummarizeSweep(sweep->id(), final_point, "test");
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u);
  const v1::SummaryRow& base = (*rows)[0];
  EXPECT_EQ(base.method(), "baseline");
  EXPECT_EQ(base.seeds(), 3u);
  const v1::MetricStat* ece = nullptr;
  for (const auto& s : base.stats())
    if (s.metric() == "ece") ece = &s;
  ASSERT_NE(ece, nullptr);
  // Final epoch 3: values 0.1/3, 0.2/3, 0.3/3 -> mean 0.2/3, sample std 0.1/3.
  EXPECT_NEAR(ece->mean(), 0.2 / 3, 1e-12);
  EXPECT_NEAR(ece->std(), 0.1 / 3, 1e-12);
  EXPECT_EQ(ece->count(), 3u);

  v1::SummaryPoint epoch1;
  epoch1.set_epoch(1);
  rows = store_->metrics().SummarizeSweep(sweep->id(), epoch1, "test");
  for (const auto& s : (*rows)[1].stats())
    if (s.metric() == "ece")
      EXPECT_NEAR(s.mean(), 0.5, 1e-12);  // (0.4+0.5+0.6)/3

  // Best by accuracy (higher is better) picks epoch 3; by ece (lower) epoch 3.
  v1::SummaryPoint best;
  best.set_best_by("accuracy");
  best.set_best_split("test");  // (this sweep has no validation rows)
  rows = store_->metrics().SummarizeSweep(sweep->id(), best, "test");
  ASSERT_TRUE(rows.ok()) << rows.status();
  for (uint32_t e : (*rows)[0].epochs()) EXPECT_EQ(e, 3u);
  best.set_best_by("ece; DROP TABLE jobs");
  EXPECT_EQ(store_->metrics()
                .SummarizeSweep(sweep->id(), best, "test")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      store_->metrics().SummarizeSweep(999, final_point, "").status().code(),
      absl::StatusCode::kNotFound);
}

// Best-epoch selection is made on validation data: a job whose best epoch
// by test ECE (1) differs from its best by validation ECE (2) is read at
// epoch 2 unless test selection is asked for, and each row says which split
// chose it. test_ts is chosen on val_ts. A sweep with no validation rows
// is an error naming the split, not an empty table.
TEST_F(MetricReaderTest, BestEpochsAreChosenOnValidationDataUnlessAskedOtherwise) {
  auto sweep = store_->sweeps().CreateSweep(Spec("select", 1));
  ASSERT_TRUE(sweep.ok());
  const int64_t w = Worker();
  const double test_ece[] = {0.05, 0.20, 0.15};
  const double val_ece[] = {0.30, 0.10, 0.20};
  const double test_ts_ece[] = {0.09, 0.08, 0.07};
  const double val_ts_ece[] = {0.02, 0.12, 0.06};
  for (int j = 0; j < 2; ++j) {
    Assignment a = Acquire(w);
    for (uint32_t e = 1; e <= 3; ++e) {
      ASSERT_TRUE(store_->reports()
                      .ReportEpoch(a.lease, {Metrics(e, "test", test_ece[e - 1]),
                                             Metrics(e, "val", val_ece[e - 1]),
                                             Metrics(e, "test_ts",
                                                     test_ts_ece[e - 1]),
                                             Metrics(e, "val_ts",
                                                     val_ts_ece[e - 1])})
                      .ok());
    }
  }
  auto stat = [](const v1::SummaryRow& r, const std::string& m) {
    for (const auto& s : r.stats())
      if (s.metric() == m) return s.mean();
    return -1.0;
  };
  v1::SummaryPoint best;
  best.set_best_by("ece");
  auto rows = store_->metrics().SummarizeSweep(sweep->id(), best, "");
  ASSERT_TRUE(rows.ok()) << rows.status();
  int test_rows = 0, ts_rows = 0;
  for (const v1::SummaryRow& r : *rows) {
    if (r.split() == "test") {
      ++test_rows;
      EXPECT_EQ(r.selected_on(), "val");
      for (uint32_t e : r.epochs()) EXPECT_EQ(e, 2u);
      EXPECT_DOUBLE_EQ(stat(r, "ece"), 0.20);
    } else if (r.split() == "test_ts") {
      ++ts_rows;
      EXPECT_EQ(r.selected_on(), "val_ts");
      for (uint32_t e : r.epochs()) EXPECT_EQ(e, 1u);
      EXPECT_DOUBLE_EQ(stat(r, "ece"), 0.09);
    }
  }
  EXPECT_EQ(test_rows, 2);
  EXPECT_EQ(ts_rows, 2);
  // Asked for: chosen on test, and marked so.
  best.set_best_split("test");
  rows = store_->metrics().SummarizeSweep(sweep->id(), best, "test");
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u);
  for (const v1::SummaryRow& r : *rows) {
    EXPECT_EQ(r.selected_on(), "test");
    for (uint32_t e : r.epochs()) EXPECT_EQ(e, 1u);
    EXPECT_DOUBLE_EQ(stat(r, "ece"), 0.05);
  }
  // A split nobody scored: an error naming it.
  best.set_best_split("valid");
  auto none = store_->metrics().SummarizeSweep(sweep->id(), best, "test");
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(none.status().message().find("\"valid\""), std::string::npos)
      << none.status();
  // A sweep stored without validation rows: the default says so.
  auto old = store_->sweeps().CreateSweep(Spec("no-val", 1));
  Assignment a = Acquire(w);
  ASSERT_TRUE(
      store_->reports().ReportEpoch(a.lease, {Metrics(1, "test", 0.1)}).ok());
  best.clear_best_split();
  none = store_->metrics().SummarizeSweep(old->id(), best, "");
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(none.status().message().find("\"val\""), std::string::npos)
      << none.status();
  EXPECT_NE(none.status().message().find("--select-split test"),
            std::string::npos)
      << none.status();
}

TEST_F(MetricReaderTest, SummaryComparesWithAReferencePairedBySeed) {
  auto sweep =
      store_->sweeps().CreateSweep(Spec("vs", 3));  // baseline x3, mixup x3
  ASSERT_TRUE(sweep.ok());
  int64_t w = Worker();
  // Jobs in order: baseline seeds 0-2, then mixup 0.2 seeds 0-2. Final ECE:
  // baseline 0.10, 0.13, 0.09; mixup 0.05, 0.07, 0.06. Mixup's seed 1 stores
  // test_ts only in the second sweep below.
  const double ece[6] = {0.10, 0.13, 0.09, 0.05, 0.07, 0.06};
  for (int j = 0; j < 6; ++j) {
    Assignment a = Acquire(w);
    ASSERT_TRUE(store_->reports()
                    .ReportEpoch(a.lease, {Metrics(1, "test", ece[j])})
                    .ok());
  }
  v1::SummaryPoint final_point;
  final_point.set_final(true);
  auto rows = store_->metrics().SummarizeSweep(sweep->id(), final_point, "test",
                                               "baseline");
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u);
  auto stat = [](const v1::SummaryRow& r, const std::string& name) {
    for (const auto& m : r.stats())
      if (m.metric() == name) return m;
    return v1::MetricStat();
  };
  EXPECT_EQ((*rows)[0].vs_method(), "baseline");
  EXPECT_FALSE(stat((*rows)[0], "ece").has_vs());  // the reference itself
  const v1::MetricStat m = stat((*rows)[1], "ece");
  ASSERT_TRUE(m.has_vs());
  // By hand: d = -0.05, -0.06, -0.03; mean -0.0466667, sd 0.0152753,
  // t(0.975, 2) = 4.302653: half width 0.0379458.
  EXPECT_EQ(m.vs().pairs(), 3u);
  EXPECT_NEAR(m.vs().mean(), -0.0466667, 1e-6);
  EXPECT_NEAR(m.vs().low(), -0.0846125, 1e-6);
  EXPECT_NEAR(m.vs().high(), -0.0087209, 1e-6);
  EXPECT_TRUE(m.vs().significant());
  // Equal accuracy on every seed: a difference of exactly 0, not significant.
  EXPECT_NEAR(stat((*rows)[1], "accuracy").vs().mean(), 0, 1e-12);
  EXPECT_FALSE(stat((*rows)[1], "accuracy").vs().significant());

  // Against mixup (one value, so the bare name resolves): the signs flip.
  rows = store_->metrics().SummarizeSweep(sweep->id(), final_point, "test",
                                          "mixup");
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ((*rows)[0].vs_method(), "mixup");
  EXPECT_DOUBLE_EQ((*rows)[0].vs_value(), 0.2);
  EXPECT_NEAR(stat((*rows)[0], "ece").vs().mean(), 0.0466667, 1e-6);

  // Unknown or absent references name what the sweep has.
  for (const char* bad : {"erl", "mixup:0.3", "mixup:x", "nonsense"}) {
    auto r =
        store_->metrics().SummarizeSweep(sweep->id(), final_point, "test", bad);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(r.status().message().find("vs \""), std::string::npos) << bad;
  }
  auto r =
      store_->metrics().SummarizeSweep(sweep->id(), final_point, "test", "erl");
  EXPECT_NE(r.status().message().find("baseline, mixup:0.2"), std::string::npos)
      << r.status();
}

TEST_F(MetricReaderTest, SummaryPairsBySeedNotByPosition) {
  auto sweep = store_->sweeps().CreateSweep(Spec("pairs", 3));
  ASSERT_TRUE(sweep.ok());
  int64_t w = Worker();
  const double ece[6] = {0.10, 0.13, 0.09, 0.05, 0.07, 0.06};
  for (int j = 0; j < 6; ++j) {
    Assignment a = Acquire(w);
    // Mixup's seed 1 (job 4) stores no test split.
    const std::string split = j == 4 ? "test_ts" : "test";
    ASSERT_TRUE(store_->reports()
                    .ReportEpoch(a.lease, {Metrics(1, split, ece[j])})
                    .ok());
  }
  v1::SummaryPoint final_point;
  final_point.set_final(true);
  auto rows = store_->metrics().SummarizeSweep(sweep->id(), final_point, "test",
                                               "baseline");
  ASSERT_TRUE(rows.ok()) << rows.status();
  const v1::SummaryRow& mixup = (*rows)[1];
  ASSERT_EQ(mixup.method(), "mixup");
  v1::MetricStat m;
  for (const auto& st : mixup.stats())
    if (st.metric() == "ece") m = st;
  // Seeds 0 and 2 pair: d = 0.05 - 0.10, 0.06 - 0.09 = -0.05, -0.03 (by
  // position it would be -0.05, -0.07). Mean -0.04, sd 0.0141421,
  // t(0.975, 1) = 12.706205: half width 0.1270620.
  EXPECT_EQ(m.vs().pairs(), 2u);
  EXPECT_NEAR(m.vs().mean(), -0.04, 1e-9);
  EXPECT_NEAR(m.vs().low(), -0.1670620, 1e-6);
  EXPECT_NEAR(m.vs().high(), 0.0870620, 1e-6);
  EXPECT_FALSE(m.vs().significant());
}

TEST_F(MetricReaderTest, ReliabilityComesBackWithMetricsDerivedFromBins) {
  store_->sweeps().CreateSweep(Spec("rel", 1)).IgnoreError();
  Assignment a = Acquire(Worker());
  v1::EpochMetrics m = Metrics(1, "test", /*stored ece, deliberately off*/ 0.5);
  ASSERT_TRUE(store_->reports().ReportEpoch(a.lease, {m}).ok());
  auto r = store_->metrics().GetReliability(a.lease.job_id(), 0, "");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->epoch(), 1u);
  ASSERT_EQ(r->bins_size(), 15);
  EXPECT_EQ(r->bins(14).count(), 100);
  // One bin: 100 examples, confidence 0.97, accuracy 0.90.
  EXPECT_NEAR(r->ece(), 0.07, 1e-12);
  EXPECT_NEAR(r->mce(), 0.07, 1e-12);
  EXPECT_NEAR(r->oe(), 0.97 * 0.07, 1e-12);
  EXPECT_EQ(store_->metrics()
                .GetReliability(a.lease.job_id(), 9, "test")
                .status()
                .code(),
            absl::StatusCode::kNotFound);
}

TEST_F(MetricReaderTest, BinsComeBackBitForBitAndAsRowsOfTheView) {
  store_->sweeps().CreateSweep(Spec("bins", 1)).IgnoreError();
  Assignment a = Acquire(Worker());
  v1::EpochMetrics m = Metrics(1, "test", 0.1);
  // Values whose shortest decimal form is long, tiny or large.
  const double sums[] = {0.1 + 0.2, 1e-300, 12345.678901234567, 1.0 / 3.0};
  m.clear_bins();
  m.set_count(int64_t{4} << 38);  // the bins add up to it
  for (int b = 0; b < 4; ++b) {
    v1::ReliabilityBin* bin = m.add_bins();
    bin->set_count(int64_t{1} << 38);
    bin->set_confidence_sum(sums[b]);
    bin->set_correct(b);
  }
  ASSERT_TRUE(store_->reports().ReportEpoch(a.lease, {m}).ok());
  auto r = store_->metrics().GetReliability(a.lease.job_id(), 1, "test");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->bins_size(), 4);
  for (int b = 0; b < 4; ++b) {
    EXPECT_EQ(r->bins(b).count(), int64_t{1} << 38);
    EXPECT_EQ(r->bins(b).confidence_sum(), sums[b]) << "bin " << b;
    EXPECT_EQ(r->bins(b).correct(), b);
  }
  v1::MetricsFilter f;
  f.set_include_bins(true);
  std::string token;
  auto rows = store_->metrics().QueryMetrics(f, &token);
  ASSERT_TRUE(rows.ok() && rows->size() == 1u);
  EXPECT_EQ((*rows)[0].bins(0).confidence_sum(), sums[0]);
  // reliability_bins is still a row per bin for anyone reading the file.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db,
                               "SELECT bin, count, correct FROM "
                               "reliability_bins WHERE job_id = ? ORDER BY bin",
                               -1, &st, nullptr),
            SQLITE_OK);
  sqlite3_bind_int64(st, 1, a.lease.job_id());
  int n = 0;
  while (sqlite3_step(st) == SQLITE_ROW) {
    EXPECT_EQ(sqlite3_column_int(st, 0), n);
    EXPECT_EQ(sqlite3_column_int64(st, 1), int64_t{1} << 38);
    EXPECT_EQ(sqlite3_column_int(st, 2), n);
    ++n;
  }
  EXPECT_EQ(n, 4);
  sqlite3_finalize(st);
  sqlite3_close(db);
  // Reporting the epoch again without bins leaves none behind.
  m.clear_bins();
  ASSERT_TRUE(store_->reports().ReportEpoch(a.lease, {m}).ok());
  EXPECT_EQ(store_->metrics()
                .GetReliability(a.lease.job_id(), 1, "test")
                ->bins_size(),
            0);
}

TEST_F(MetricReaderTest, EventsRecordTheLifecycle) {
  auto sweep = store_->sweeps().CreateSweep(Spec("events", 1));
  int64_t w = Worker();
  Assignment a = Acquire(w);
  store_->reports().FinishJob(a.lease, v1::FAILED, "loss is nan").IgnoreError();
  auto events = store_->metrics().ListEvents(sweep->id(), 0, 0, 100);
  ASSERT_TRUE(events.ok());
  std::vector<std::string> kinds;
  for (const auto& e : *events) kinds.push_back(e.kind());
  EXPECT_EQ(kinds, (std::vector<std::string>{"submitted", "leased", "failed"}));
  EXPECT_EQ((*events)[2].message(), "loss is nan");
  EXPECT_EQ(store_->sweeps().GetJob(a.lease.job_id())->error(), "loss is nan");
}

}  // namespace
}  // namespace mixcal::storage
