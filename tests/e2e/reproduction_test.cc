// A small reproduction through the whole system, the way bench/reproduce.sh
// runs the papers' claims: a real coordinator and two real workers train an
// overconfident network (an MLP that fits 900 examples of four overlapping
// Gaussian classes in 64 dimensions) with and without mixup, three seeds
// each; the store's paired comparison must show mixup's overconfidence
// error lower than the baseline's, with a 95% interval that excludes 0.

#include <cstdio>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "tests/e2e/harness.h"

namespace mixcal::testing {
namespace {

v1::SweepSpec OverconfidentSweep() {
  v1::SweepSpec s;
  s.set_name("reproduce-oe");
  v1::DataSpec* d = s.mutable_data();
  d->set_dataset("synthetic");
  d->mutable_synthetic()->set_classes(4);
  d->mutable_synthetic()->set_size(8);
  d->mutable_synthetic()->set_train_count(1000);
  d->mutable_synthetic()->set_test_count(1000);
  d->mutable_synthetic()->set_separation(0.25);
  s.set_model("mlp");
  v1::TrainingSpec* t = s.mutable_training();
  t->set_epochs(30);
  t->set_batch_size(100);
  t->set_optimizer("adam");
  t->set_lr(0.001);
  t->set_weight_decay(0);
  t->set_schedule("constant");
  s.add_methods()->set_name("baseline");
  v1::MethodSpec* m = s.add_methods();
  m->set_name("mixup");
  m->add_values(1.0);
  for (int i = 0; i < 3; ++i) s.add_seeds(i);
  s.set_checkpoint_every(10);
  s.set_device("cpu");
  return s;
}

const v1::MetricStat* Find(const v1::SummaryRow& row, const std::string& m) {
  for (const auto& s : row.stats())
    if (s.metric() == m) return &s;
  return nullptr;
}

TEST(ReproductionTest, MixupLowersOverconfidenceAcrossSeeds) {
  Cluster c("reproduce");
  ASSERT_TRUE(c.StartCoordinator());
  grpc::ClientContext sctx;
  v1::SubmitSweepRequest sreq;
  *sreq.mutable_spec() = OverconfidentSweep();
  v1::Sweep sweep;
  ASSERT_TRUE(c.api().SubmitSweep(&sctx, sreq, &sweep).ok());
  c.StartWorker();
  c.StartWorker();
  ASSERT_TRUE(WaitFor(
      [&] { return c.GetSweep(sweep.id()).state() == v1::SWEEP_SUCCEEDED; },
      300))
      << Slurp(c.WorkerLog(0)) << Slurp(c.WorkerLog(1));

  grpc::ClientContext ctx;
  v1::SummarizeSweepRequest req;
  req.set_sweep_id(sweep.id());
  req.mutable_at()->set_final(true);
  req.set_split("test");
  req.set_vs("baseline");
  v1::SummarizeSweepResponse resp;
  ASSERT_TRUE(c.api().SummarizeSweep(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.rows_size(), 2);
  const v1::SummaryRow& base = resp.rows(0);
  const v1::SummaryRow& mixup = resp.rows(1);
  ASSERT_EQ(base.method(), "baseline");
  ASSERT_EQ(mixup.method(), "mixup");
  EXPECT_EQ(mixup.seeds(), 3u);
  // The regime: the baseline is overconfident, most of its ECE is OE.
  const v1::MetricStat* base_oe = Find(base, "oe");
  const v1::MetricStat* base_ece = Find(base, "ece");
  ASSERT_NE(base_oe, nullptr);
  EXPECT_GT(base_oe->mean(), 0.05);
  EXPECT_GT(base_oe->mean(), 0.5 * base_ece->mean());
  // The effect: mixup's OE is lower on every pairing, interval below 0.
  const v1::MetricStat* oe = Find(mixup, "oe");
  ASSERT_NE(oe, nullptr);
  ASSERT_TRUE(oe->has_vs());
  EXPECT_EQ(oe->vs().pairs(), 3u);
  EXPECT_LT(oe->vs().mean(), 0);
  EXPECT_LT(oe->vs().high(), 0);
  EXPECT_TRUE(oe->vs().significant());
  EXPECT_NEAR(oe->vs().mean(), oe->mean() - base_oe->mean(), 1e-12);
  // The metrics beyond ECE came along, with their estimators.
  for (const char* name : {"classwise_ece", "l2_ce_debiased", "aurc",
                           "brier_reliability", "ece_low", "ece_high",
                           "mmce", "tace", "rmsce", "smece"}) {
    const v1::MetricStat* st = Find(mixup, name);
    ASSERT_NE(st, nullptr) << name;
    EXPECT_EQ(st->count(), 3u) << name;
  }

  // The CLI prints the same comparison, marked.
  const std::string cmd = std::string(MIXCAL_BIN) + " summary " +
                          std::to_string(sweep.id()) +
                          " --vs baseline --address 127.0.0.1:" +
                          std::to_string(c.port());
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, pipe.get())) out.append(buf, n);
  EXPECT_NE(out.find("difference to baseline"), std::string::npos) << out;
  EXPECT_NE(out.find("mixup 1"), std::string::npos) << out;
  EXPECT_NE(out.find("] *"), std::string::npos) << out;
}

}  // namespace
}  // namespace mixcal::testing
