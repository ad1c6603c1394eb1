// SweepBook: submitting sweeps (validation, quotas, request ids), reading
// jobs back, cancelling.

#include <sqlite3.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "tests/storage/store_fixture.h"

namespace mixcal::storage {
namespace {

class SweepBookTest : public StoreTest {};

TEST_F(SweepBookTest, CreateSweepStoresAllJobsInExpansionOrder) {
  absl::StatusOr<v1::Sweep> sweep = store_->sweeps().CreateSweep(Spec("a"));
  ASSERT_TRUE(sweep.ok()) << sweep.status();
  EXPECT_EQ(sweep->job_ids_size(), 4);
  EXPECT_EQ(sweep->counts().queued(), 4u);
  EXPECT_EQ(sweep->state(), v1::SWEEP_ACTIVE);
  auto jobs = store_->sweeps().ListJobs({.sweep_id = sweep->id()});
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), 4u);
  EXPECT_EQ((*jobs)[0].method(), "baseline");
  EXPECT_EQ((*jobs)[2].method(), "mixup");
  EXPECT_EQ((*jobs)[3].seed(), 1u);
  EXPECT_EQ((*jobs)[3].config().value(), 0.2);
  EXPECT_EQ((*jobs)[3].max_attempts(), 3u);
}

TEST_F(SweepBookTest, InvalidSpecStoresNothing) {
  v1::SweepSpec bad = Spec("bad");
  bad.mutable_methods(1)->set_values(0, 11);
  absl::StatusOr<v1::Sweep> r = store_->sweeps().CreateSweep(bad);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("methods[1].values[0]"),
            std::string::npos)
      << r.status();
  auto sweeps = store_->sweeps().ListSweeps(100, false);
  ASSERT_TRUE(sweeps.ok());
  EXPECT_TRUE(sweeps->empty());
  EXPECT_TRUE(store_->sweeps().ListJobs({})->empty());
  EXPECT_TRUE(store_->metrics().ListEvents(0, 0, 0, 100)->empty());
}

TEST_F(SweepBookTest, QuotasPerSubmitterRefuseExcessAndStoreNothing) {
  SubmitQuota bob{"bob", /*max_unfinished_jobs=*/10, /*max_active_sweeps=*/3};
  auto first = store_->sweeps().CreateSweep(Spec("a", 2), bob);  // 4 jobs
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->submitter(), "bob");
  ASSERT_TRUE(store_->sweeps().CreateSweep(Spec("b", 2), bob).ok());  // 8 jobs
  // 8 + 4 > 10: refused, naming the numbers and the flag.
  auto third = store_->sweeps().CreateSweep(Spec("c", 2), bob);
  ASSERT_TRUE(absl::IsResourceExhausted(third.status())) << third.status();
  EXPECT_FALSE(IsStorageFull(third.status()));  // a quota, not a full disk
  EXPECT_NE(third.status().message().find("bob has 8 jobs queued or running"),
            std::string::npos)
      << third.status();
  EXPECT_NE(
      third.status().message().find("--max_unfinished_jobs_per_submitter"),
      std::string::npos);
  EXPECT_EQ(store_->sweeps().ListSweeps(100, false)->size(), 2u);
  // Another submitter has a quota of their own.
  ASSERT_TRUE(
      store_->sweeps().CreateSweep(Spec("d", 2), {"alice", 10, 3}).ok());
  // A retry of a stored sweep returns it whatever the quota.
  v1::SweepSpec again = Spec("b2", 2);
  again.set_request_id("r-1");
  ASSERT_TRUE(store_->sweeps().CreateSweep(again, {"carol", 10, 3}).ok());
  EXPECT_TRUE(store_->sweeps().CreateSweep(again, {"carol", 1, 1}).ok());
  // Once bob's work ends, he may submit again; then the sweep count binds.
  ASSERT_TRUE(store_->sweeps().CancelSweep(first->id()).ok());
  ASSERT_TRUE(
      store_->sweeps().CreateSweep(Spec("e", 1), bob).ok());  // 2 jobs: 10
  ASSERT_TRUE(
      store_->sweeps()
          .CancelSweep(store_->sweeps().ListSweeps(1, false)->at(0).id())
          .ok());
  SubmitQuota two_sweeps{"bob", 0, 1};
  auto over = store_->sweeps().CreateSweep(Spec("f", 1), two_sweeps);
  ASSERT_TRUE(absl::IsResourceExhausted(over.status())) << over.status();
  EXPECT_NE(over.status().message().find("--max_active_sweeps_per_submitter"),
            std::string::npos)
      << over.status();
}

TEST_F(SweepBookTest, RequestIdNeverCreatesASecondCopy) {
  v1::SweepSpec s = Spec("idem");
  s.set_request_id("req-1");
  auto a = store_->sweeps().CreateSweep(s);
  auto b = store_->sweeps().CreateSweep(s);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->id(), b->id());
  EXPECT_EQ(store_->sweeps().ListJobs({})->size(), 4u);
  s.add_seeds(7);
  auto c = store_->sweeps().CreateSweep(s);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kFailedPrecondition)
      << c.status();
  EXPECT_EQ(store_->sweeps().ListJobs({})->size(), 4u);
}

TEST_F(SweepBookTest, AJobWhoseStoredConfigIsDamagedIsDataLossNamingIt) {
  auto sweep = store_->sweeps().CreateSweep(Spec("damaged"));
  ASSERT_TRUE(sweep.ok()) << sweep.status();
  const int64_t job = sweep->job_ids(1);
  store_.reset();
  {
    // Another program scribbles over one job's config.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    const std::string sql =
        absl::StrCat("UPDATE jobs SET config = x'ffffffff0a' WHERE id = ", job);
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  store_ = OpenStore();
  absl::StatusOr<v1::Job> j = store_->sweeps().GetJob(job);
  ASSERT_EQ(j.status().code(), absl::StatusCode::kDataLoss) << j.status();
  EXPECT_NE(j.status().message().find(absl::StrCat("job ", job)),
            std::string::npos)
      << j.status();
  JobFilter f;
  f.sweep_id = sweep->id();
  EXPECT_EQ(store_->sweeps().ListJobs(f).status().code(),
            absl::StatusCode::kDataLoss);
  // The other jobs still read.
  EXPECT_TRUE(store_->sweeps().GetJob(sweep->job_ids(0)).ok());
}

TEST_F(SweepBookTest, CancellationReachesTheWorkerThroughHeartbeat) {
  auto sweep = store_->sweeps().CreateSweep(Spec("cancel", 1));
  int64_t w = Worker();
  Assignment a = Acquire(w);
  auto c = store_->sweeps().CancelJob(a.lease.job_id());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->state(), v1::CANCELLED);
  auto hb = store_->queue().Heartbeat(w, {a.lease}, kLease);
  ASSERT_EQ(hb->cancelled.size(), 1u);
  EXPECT_TRUE(hb->extended.empty());
  // The worker's epoch report is refused; its FinishJob is accepted and the
  // job stays CANCELLED.
  EXPECT_EQ(
      store_->reports().ReportEpoch(a.lease, {Metrics(1, "test", 0.1)}).code(),
      absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(*store_->reports().FinishJob(a.lease, v1::FAILED, "stopped"),
            v1::CANCELLED);
  EXPECT_EQ(store_->sweeps().CancelJob(a.lease.job_id()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // Cancelling the sweep ends the rest.
  auto s = store_->sweeps().CancelSweep(sweep->id());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->state(), v1::SWEEP_CANCELLED);
  EXPECT_EQ(s->counts().cancelled(), 2u);
  EXPECT_FALSE(store_->queue().AcquireJob(w, kLease)->has_value());
}

}  // namespace
}  // namespace mixcal::storage
