// ReportLog: epochs, checkpoints and finishes, unary or streamed, each
// fenced on its lease; no finish or checkpoint past an unstored epoch;
// prepared reports' bytes written once.

#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/storage/store_fixture.h"

namespace mixcal::storage {
namespace {

namespace fs = std::filesystem;

class ReportLogTest : public StoreTest {};

// (epoch, attempt) of the job's rows of `split`, read with SQL.
std::vector<std::pair<int, int>> RowAttempts(const std::string& path,
                                             const std::string& split) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db,
                     "SELECT epoch, attempt FROM epoch_metrics WHERE split = ? "
                     "ORDER BY epoch",
                     -1, &st, nullptr);
  sqlite3_bind_text(st, 1, split.c_str(), -1, SQLITE_TRANSIENT);
  std::vector<std::pair<int, int>> out;
  while (sqlite3_step(st) == SQLITE_ROW)
    out.push_back({sqlite3_column_int(st, 0), sqlite3_column_int(st, 1)});
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

TEST_F(ReportLogTest, StaleAttemptReportIsRefusedAndChangesNothing) {
  store_->sweeps().CreateSweep(Spec("fence", 1)).IgnoreError();
  int64_t w1 = Worker(), w2 = Worker();
  Assignment first = Acquire(w1);
  ASSERT_TRUE(store_->reports()
                  .ReportEpoch(first.lease, {Metrics(1, "test", 0.10)})
                  .ok());
  clock_.AdvanceMicros(kLease + 1);
  auto expired = store_->queue().ExpireLeases();
  ASSERT_EQ(expired->requeued.size(), 1u);
  // The requeued job is handed out again; attempt 2 resumes.
  Assignment second = Acquire(w2);
  ASSERT_EQ(second.lease.job_id(), first.lease.job_id());
  EXPECT_EQ(second.lease.attempt(), 2u);
  // The first worker wakes up and reports epoch 1 again with other numbers.
  absl::Status s =
      store_->reports().ReportEpoch(first.lease, {Metrics(1, "test", 0.99)});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_EQ(store_->reports().RecordCheckpoint(first.lease, 1, "x").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->reports()
                .FinishJob(first.lease, v1::SUCCEEDED, "")
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
  auto rel = store_->metrics().GetReliability(first.lease.job_id(), 1, "test");
  ASSERT_TRUE(rel.ok());
  std::string token;
  v1::MetricsFilter f;
  auto rows = store_->metrics().QueryMetrics(f, &token);
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_DOUBLE_EQ((*rows)[0].ece(), 0.10);
  EXPECT_EQ(store_->sweeps().GetJob(first.lease.job_id())->state(),
            v1::RUNNING);
}

TEST_F(ReportLogTest, QueuedAgainJobRefusesTheOldLeaseEvenWithSameAttempt) {
  store_->sweeps().CreateSweep(Spec("requeue", 1)).IgnoreError();
  int64_t w = Worker();
  Assignment a = Acquire(w);
  clock_.AdvanceMicros(kLease + 1);
  ASSERT_EQ(store_->queue().ExpireLeases()->requeued.size(), 1u);
  // Not yet leased again: state QUEUED, attempt still 1.
  EXPECT_EQ(
      store_->reports().ReportEpoch(a.lease, {Metrics(1, "test", 0.1)}).code(),
      absl::StatusCode::kFailedPrecondition);
}

TEST_F(ReportLogTest, ReReportingAnEpochLeavesOneRow) {
  store_->sweeps().CreateSweep(Spec("dup", 1)).IgnoreError();
  Assignment a = Acquire(Worker());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(store_->reports()
                    .ReportEpoch(a.lease, {Metrics(1, "test", 0.1 + 0.1 * i),
                                           Metrics(1, "test_ts", 0.05)})
                    .ok());
  }
  EXPECT_EQ(CountRows("test"), 1);
  EXPECT_EQ(CountRows("test_ts"), 1);
  v1::MetricsFilter f;
  f.set_include_bins(true);
  f.set_split("test");
  std::string token;
  auto rows = store_->metrics().QueryMetrics(f, &token);
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_DOUBLE_EQ((*rows)[0].ece(), 0.1 + 0.1 * 2);  // the last report wins
  EXPECT_EQ((*rows)[0].bins_size(), 15);              // not 45
}

TEST_F(ReportLogTest, ARowRecordsTheAttemptThatWroteIt) {
  v1::SweepSpec s = Spec("provenance", 1);
  s.clear_methods();
  s.add_methods()->set_name("baseline");
  ASSERT_TRUE(store_->sweeps().CreateSweep(s).ok());
  int64_t w = Worker();
  Assignment a1 = Acquire(w);
  ASSERT_TRUE(
      store_->reports().ReportEpoch(a1.lease, {Metrics(1, "test", 0.1)}).ok());
  ASSERT_TRUE(
      store_->reports().ReportEpoch(a1.lease, {Metrics(2, "test", 0.1)}).ok());
  using Rows = std::vector<std::pair<int, int>>;
  EXPECT_EQ(RowAttempts(path_, "test"), (Rows{{1, 1}, {2, 1}}));
  clock_.AdvanceMicros(kLease + 1);
  ASSERT_EQ(store_->queue().ExpireLeases()->requeued.size(), 1u);
  Assignment a2 = Acquire(w);
  ASSERT_EQ(a2.lease.attempt(), 2u);
  // Attempt 2 resumed from epoch 1: it rewrites epoch 2 and adds epoch 3.
  ASSERT_TRUE(
      store_->reports().ReportEpoch(a2.lease, {Metrics(2, "test", 0.2)}).ok());
  ASSERT_TRUE(
      store_->reports().ReportEpoch(a2.lease, {Metrics(3, "test", 0.2)}).ok());
  EXPECT_EQ(RowAttempts(path_, "test"), (Rows{{1, 1}, {2, 2}, {3, 2}}));
  // The old attempt's late report is refused and writes nothing.
  EXPECT_FALSE(
      store_->reports().ReportEpoch(a1.lease, {Metrics(3, "test", 0.9)}).ok());
  EXPECT_EQ(RowAttempts(path_, "test"), (Rows{{1, 1}, {2, 2}, {3, 2}}));
}

TEST_F(ReportLogTest, FinishIsIdempotentAndEndsTheSweep) {
  v1::SweepSpec s = Spec("finish", 1);
  s.clear_methods();
  s.add_methods()->set_name("baseline");
  auto sweep = store_->sweeps().CreateSweep(s);
  int64_t w = Worker();
  Assignment a = Acquire(w);
  StoreEpochs(a.lease, 3);
  EXPECT_EQ(*store_->reports().FinishJob(a.lease, v1::SUCCEEDED, ""),
            v1::SUCCEEDED);
  EXPECT_EQ(*store_->reports().FinishJob(a.lease, v1::SUCCEEDED, ""),
            v1::SUCCEEDED);
  EXPECT_EQ(store_->sweeps().GetSweep(sweep->id())->state(),
            v1::SWEEP_SUCCEEDED);
  auto hb = store_->queue().Heartbeat(w, {a.lease}, kLease);
  EXPECT_EQ(hb->lost.size(), 1u);
  EXPECT_EQ(store_->reports()
                .FinishJob(a.lease, v1::JOB_STATE_UNSPECIFIED, "")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ReportLogTest, ACheckpointIsRecordedOnlyAfterEveryEpochItCovers) {
  store_->sweeps()
      .CreateSweep(Spec("ckpt", 1))
      .IgnoreError();  // 3 epochs a job
  Assignment a = Acquire(Worker());
  ASSERT_TRUE(
      store_->reports().ReportEpoch(a.lease, {Metrics(1, "test", 0.1)}).ok());
  // Epoch 2 never arrived (its insert failed): a checkpoint at 2 would make
  // the next attempt resume at 3 and epoch 2 would be lost for good.
  absl::Status s = store_->reports().RecordCheckpoint(a.lease, 2, "job-1/2.pt");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_NE(s.message().find("only 1 of its epochs 1..2"), std::string::npos)
      << s;
  EXPECT_EQ(store_->sweeps().GetJob(a.lease.job_id())->checkpoint_epoch(), 0u);
  // The same in one streamed batch: epoch 1, then a checkpoint at 2.
  v1::WorkerReport ckpt;
  *ckpt.mutable_checkpoint()->mutable_lease() = a.lease;
  ckpt.mutable_checkpoint()->set_epoch(2);
  ckpt.mutable_checkpoint()->set_path("job-1/2.pt");
  std::vector<const v1::WorkerReport*> batch = {&ckpt};
  EXPECT_EQ(store_->reports().StoreReports(batch)[0].status.code(),
            absl::StatusCode::kUnavailable);
  // Resent in order, epoch 2 and then the checkpoint, both go in.
  ASSERT_TRUE(
      store_->reports().ReportEpoch(a.lease, {Metrics(2, "test", 0.1)}).ok());
  EXPECT_TRUE(
      store_->reports().RecordCheckpoint(a.lease, 2, "job-1/2.pt").ok());
  EXPECT_EQ(store_->sweeps().GetJob(a.lease.job_id())->checkpoint_epoch(), 2u);
  // Epochs outside the job's are refused.
  s = store_->reports().RecordCheckpoint(a.lease, 4, "job-1/4.pt");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("epoch must be in [1, 3]"), std::string::npos)
      << s;
  EXPECT_EQ(store_->reports().RecordCheckpoint(a.lease, 0, "job-1/0.pt").code(),
            absl::StatusCode::kInvalidArgument);
  // And paths that would lead outside the checkpoint directory, or to a
  // device, or hold a NUL: refused naming the field, nothing recorded.
  for (const std::string& bad :
       {std::string("ck\0pt", 5), std::string("/etc/passwd"),
        std::string("../../etc/shadow"), std::string("job-1/../../x"),
        std::string("job-1//x"), std::string("./x"), std::string("job 1/x"),
        std::string("job-1/x\n"), std::string("/dev/zero")}) {
    absl::Status refused = store_->reports().RecordCheckpoint(a.lease, 2, bad);
    EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(refused.message().find("path"), std::string::npos) << refused;
  }
  EXPECT_EQ(store_->sweeps().GetJob(a.lease.job_id())->checkpoint(),
            "job-1/2.pt");
}

TEST_F(ReportLogTest, StreamedReportsApplyInOrderEachFencedOnItsOwn) {
  store_->sweeps().CreateSweep(Spec("stream", 1, /*epochs=*/2)).IgnoreError();
  const int64_t w = Worker();
  Assignment a = Acquire(w);
  std::vector<v1::WorkerReport> reports(7);
  *reports[0].mutable_epoch()->mutable_lease() = a.lease;
  *reports[0].mutable_epoch()->add_metrics() = Metrics(1, "test", 0.1);
  reports[1] = reports[0];  // a stale attempt
  reports[1].mutable_epoch()->mutable_lease()->set_attempt(a.lease.attempt() +
                                                           5);
  // reports[2] holds nothing
  *reports[3].mutable_checkpoint()->mutable_lease() = a.lease;
  reports[3].mutable_checkpoint()->set_epoch(1);
  reports[3].mutable_checkpoint()->set_path("job-1/epoch-1.pt");
  *reports[4].mutable_epoch()->mutable_lease() = a.lease;
  *reports[4].mutable_epoch()->add_metrics() = Metrics(2, "test", 0.2);
  *reports[5].mutable_finish()->mutable_lease() = a.lease;
  reports[5].mutable_finish()->set_outcome(v1::SUCCEEDED);
  // After the finish the lease is no longer running.
  *reports[6].mutable_epoch()->mutable_lease() = a.lease;
  *reports[6].mutable_epoch()->add_metrics() = Metrics(3, "test", 0.3);
  std::vector<const v1::WorkerReport*> ptrs;
  for (const auto& r : reports) ptrs.push_back(&r);
  std::vector<ReportResult> res = store_->reports().StoreReports(ptrs);
  ASSERT_EQ(res.size(), 7u);
  EXPECT_TRUE(res[0].status.ok()) << res[0].status;
  EXPECT_EQ(res[1].status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(res[2].status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(res[3].status.ok()) << res[3].status;
  EXPECT_TRUE(res[4].status.ok()) << res[4].status;
  EXPECT_TRUE(res[5].status.ok()) << res[5].status;
  EXPECT_EQ(res[5].state, v1::SUCCEEDED);
  EXPECT_EQ(res[6].status.code(), absl::StatusCode::kFailedPrecondition)
      << res[6].status;
  // A refusal says the job's state when the attempt is still the lease's.
  EXPECT_EQ(res[1].state, v1::JOB_STATE_UNSPECIFIED);
  EXPECT_EQ(res[6].state, v1::SUCCEEDED);
  auto job = store_->sweeps().GetJob(a.lease.job_id());
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), v1::SUCCEEDED);
  EXPECT_EQ(job->last_epoch(), 2u);
  EXPECT_EQ(job->checkpoint(), "job-1/epoch-1.pt");
  EXPECT_EQ(job->checkpoint_epoch(), 1u);
  EXPECT_EQ(CountRows("test"), 2);
  // The same batch again (a worker resending after a lost ack): the epochs
  // were stored once, the finish is a repeat, nothing changes.
  res = store_->reports().StoreReports(ptrs);
  EXPECT_EQ(res[0].status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(res[5].status.ok());
  EXPECT_EQ(res[5].state, v1::SUCCEEDED);
  EXPECT_EQ(CountRows("test"), 2);
}

TEST_F(ReportLogTest,
       AJobNeverFinishesOrCheckpointsPastAnEpochThatWasNotStored) {
  // The predictions file fills up while the database still has room: the
  // epoch carrying predictions is refused, and so must be what the worker
  // sent after it (its checkpoint and finish), in this batch and in later
  // ones, until it resends that epoch; then all goes in.
  store_->sweeps().CreateSweep(Spec("hole", 1, /*epochs=*/2)).IgnoreError();
  Assignment a = Acquire(Worker());
  std::vector<v1::WorkerReport> reports(4);
  *reports[0].mutable_epoch()->mutable_lease() = a.lease;
  *reports[0].mutable_epoch()->add_metrics() = Metrics(1, "test", 0.1);
  *reports[1].mutable_epoch()->mutable_lease() = a.lease;
  *reports[1].mutable_epoch()->add_metrics() = Metrics(2, "test", 0.2);
  *reports[1].mutable_epoch()->add_predictions() =
      MakePredictions(2, 100, 0.8f, 0);
  *reports[2].mutable_checkpoint()->mutable_lease() = a.lease;
  reports[2].mutable_checkpoint()->set_epoch(2);
  reports[2].mutable_checkpoint()->set_path("job-1/epoch-2.pt");
  *reports[3].mutable_finish()->mutable_lease() = a.lease;
  reports[3].mutable_finish()->set_outcome(v1::SUCCEEDED);
  std::vector<const v1::WorkerReport*> ptrs;
  for (const auto& r : reports) ptrs.push_back(&r);
  env_.set_full(true);
  std::vector<ReportResult> res = store_->reports().StoreReports(ptrs);
  ASSERT_EQ(res.size(), 4u);
  EXPECT_TRUE(res[0].status.ok()) << res[0].status;
  EXPECT_EQ(res[1].status.code(), absl::StatusCode::kResourceExhausted)
      << res[1].status;
  EXPECT_EQ(res[2].status.code(), absl::StatusCode::kAborted) << res[2].status;
  EXPECT_EQ(res[3].status.code(), absl::StatusCode::kAborted) << res[3].status;
  EXPECT_NE(res[3].status.message().find("epoch 2 is not stored yet"),
            std::string::npos)
      << res[3].status;
  // A later batch with only the finish: still refused.
  EXPECT_EQ(store_->reports().StoreReports({ptrs[3]})[0].status.code(),
            absl::StatusCode::kAborted);
  auto job = store_->sweeps().GetJob(a.lease.job_id());
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), v1::RUNNING);
  EXPECT_EQ(job->last_epoch(), 1u);
  EXPECT_EQ(job->checkpoint_epoch(), 0u);
  // Space again; the worker resends from the oldest unacknowledged report.
  env_.set_full(false);
  res = store_->reports().StoreReports({ptrs[1], ptrs[2], ptrs[3]});
  for (const ReportResult& r : res) EXPECT_TRUE(r.status.ok()) << r.status;
  job = store_->sweeps().GetJob(a.lease.job_id());
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), v1::SUCCEEDED);
  EXPECT_EQ(job->last_epoch(), 2u);
  EXPECT_EQ(job->checkpoint_epoch(), 2u);
  auto kept = store_->metrics().GetPredictions(a.lease.job_id(), 2, "test");
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(kept->probabilities(),
            reports[1].epoch().predictions(0).probabilities());
}

TEST_F(ReportLogTest, UnaryFinishAndCheckpointAreRefusedPastAnUnstoredEpoch) {
  // The unary RPCs go through the report stream's checks: a finish or a
  // checkpoint sent alone after an epoch that could not be stored must not
  // end the job with that epoch missing.
  store_->sweeps().CreateSweep(Spec("unary-hole", 1, /*epochs=*/2)).IgnoreError();
  Assignment a = Acquire(Worker());
  ASSERT_TRUE(
      store_->reports().ReportEpoch(a.lease, {Metrics(1, "test", 0.1)}).ok());
  v1::ReportEpochRequest second;
  *second.mutable_lease() = a.lease;
  *second.add_metrics() = Metrics(2, "test", 0.2);
  *second.add_predictions() = MakePredictions(2, 100, 0.8f, 0);
  env_.set_full(true);
  EXPECT_TRUE(IsStorageFull(store_->reports().ReportEpoch(second)));
  env_.set_full(false);
  const absl::Status checkpoint =
      store_->reports().RecordCheckpoint(a.lease, 2, "job-1/epoch-2.pt");
  EXPECT_EQ(checkpoint.code(), absl::StatusCode::kAborted) << checkpoint;
  const absl::StatusOr<v1::JobState> finish =
      store_->reports().FinishJob(a.lease, v1::SUCCEEDED, "");
  EXPECT_EQ(finish.status().code(), absl::StatusCode::kAborted)
      << finish.status();
  auto job = store_->sweeps().GetJob(a.lease.job_id());
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), v1::RUNNING);
  EXPECT_EQ(job->last_epoch(), 1u);
  EXPECT_EQ(job->checkpoint_epoch(), 0u);
  // The epoch resent, the same unary calls go through.
  ASSERT_TRUE(store_->reports().ReportEpoch(second).ok());
  EXPECT_TRUE(
      store_->reports().RecordCheckpoint(a.lease, 2, "job-1/epoch-2.pt").ok());
  {
    auto done = store_->reports().FinishJob(a.lease, v1::SUCCEEDED, "");
    ASSERT_TRUE(done.ok()) << done.status();
    EXPECT_EQ(*done, v1::SUCCEEDED);
  }
}

TEST_F(ReportLogTest, PreparedReportsWriteTheirBytesOnceAndKeepEveryRefusal) {
  // The coordinator's path: each report is prepared (checked, its bytes
  // appended) where it was received, then stored in a batch. Bytes are
  // appended while preparing only for an attempt whose kept predictions
  // already passed the job's checks; an attempt's first are checked and
  // appended under the lock.
  store_->sweeps().CreateSweep(Spec("prepared", 1)).IgnoreError();
  Assignment a = Acquire(Worker());
  const std::string file = path_ + ".predictions";
  const auto file_size = [&] {
    std::error_code ec;
    const auto n = fs::file_size(file, ec);
    return ec ? int64_t{0} : static_cast<int64_t>(n);
  };
  const int64_t one = 100 * 3 * 2 + 100 * 4;  // 100 x 3 float16, 100 labels
  std::vector<v1::WorkerReport> reports(5);
  *reports[0].mutable_epoch()->mutable_lease() = a.lease;
  *reports[0].mutable_epoch()->add_metrics() = Metrics(1, "test", 0.1);
  *reports[0].mutable_epoch()->add_predictions() =
      MakePredictions(1, 100, 0.8f, 0);
  {
    // The attempt's first: not appended while preparing.
    const int64_t before = file_size();
    PreparedReport first = store_->reports().PrepareReport(&reports[0]);
    EXPECT_TRUE(first.checked.ok()) << first.checked;
    EXPECT_FALSE(first.in_file());
    EXPECT_EQ(file_size(), before);
    const v1::WorkerReport* r0 = &reports[0];
    const PreparedReport* p0 = &first;
    ASSERT_TRUE(store_->reports().StoreReports({&r0, 1}, {&p0, 1})[0]
                    .status.ok());
    EXPECT_EQ(file_size() - before, one);
  }
  *reports[1].mutable_epoch()->mutable_lease() = a.lease;
  *reports[1].mutable_epoch()->add_metrics() = Metrics(2, "test", 0.2);
  *reports[1].mutable_epoch()->add_predictions() =
      MakePredictions(2, 100, 0.7f, 1);
  // Refused by its own checks: its bytes are never written.
  *reports[2].mutable_epoch()->mutable_lease() = a.lease;
  *reports[2].mutable_epoch()->add_metrics() = Metrics(3, "test", 0.2);
  *reports[2].mutable_epoch()->add_predictions() =
      MakePredictions(3, 100, 0.8f, 0);
  reports[2]
      .mutable_epoch()
      ->mutable_predictions(0)
      ->mutable_labels()
      ->pop_back();
  *reports[3].mutable_epoch()->mutable_lease() = a.lease;
  *reports[3].mutable_epoch()->add_metrics() = Metrics(3, "test", 0.2);
  *reports[3].mutable_epoch()->add_predictions() =
      MakePredictions(3, 100, 0.6f, 2);
  *reports[4].mutable_finish()->mutable_lease() = a.lease;
  reports[4].mutable_finish()->set_outcome(v1::SUCCEEDED);
  const int64_t before = file_size();
  // What was sent, to compare with what is read back: preparing drops the
  // bytes it wrote from the report.
  const std::vector<v1::WorkerReport> sent = reports;
  std::vector<PreparedReport> prepared;
  for (size_t i = 1; i < reports.size(); ++i)
    prepared.push_back(store_->reports().PrepareReport(&reports[i]));
  EXPECT_TRUE(reports[1].epoch().predictions(0).probabilities().empty());
  EXPECT_EQ(reports[1].epoch().predictions(0).count(), 100u);
  // A refused report keeps its bytes (nothing was written).
  EXPECT_EQ(reports[2].epoch().predictions(0).probabilities(),
            sent[2].epoch().predictions(0).probabilities());
  EXPECT_EQ(file_size() - before, 2 * one);  // reports 1 and 3, once each
  EXPECT_EQ(prepared[1].checked.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(prepared[1].checked.message().find("predictions[0].labels"),
            std::string::npos)
      << prepared[1].checked;
  std::vector<const v1::WorkerReport*> ptrs;
  std::vector<const PreparedReport*> pre;
  for (size_t i = 1; i < reports.size(); ++i) {
    ptrs.push_back(&reports[i]);
    pre.push_back(&prepared[i - 1]);
  }
  std::vector<ReportResult> res = store_->reports().StoreReports(ptrs, pre);
  EXPECT_TRUE(res[0].status.ok()) << res[0].status;
  EXPECT_EQ(res[1].status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(res[2].status.ok()) << res[2].status;
  EXPECT_TRUE(res[3].status.ok()) << res[3].status;
  EXPECT_EQ(file_size() - before, 2 * one);  // storing wrote no bytes again
  for (uint32_t epoch : {1u, 2u, 3u}) {
    auto kept =
        store_->metrics().GetPredictions(a.lease.job_id(), epoch, "test");
    ASSERT_TRUE(kept.ok()) << kept.status();
    const v1::Predictions& want =
        sent[epoch == 1 ? 0 : epoch == 2 ? 1 : 3].epoch().predictions(0);
    EXPECT_EQ(kept->probabilities(), want.probabilities());
    EXPECT_EQ(kept->labels(), want.labels());
  }
  // A report prepared with the disk full leaves the same hole as one
  // whose bytes could not be written while storing.
  store_->sweeps().CreateSweep(Spec("prepared-full", 1, 2)).IgnoreError();
  Assignment b = Acquire(Worker());
  v1::ReportEpochRequest first;
  *first.mutable_lease() = b.lease;
  *first.add_metrics() = Metrics(1, "test", 0.1);
  *first.add_predictions() = MakePredictions(1, 100, 0.8f, 0);
  ASSERT_TRUE(store_->reports().ReportEpoch(first).ok());
  v1::WorkerReport full, finish;
  *full.mutable_epoch()->mutable_lease() = b.lease;
  *full.mutable_epoch()->add_metrics() = Metrics(2, "test", 0.1);
  *full.mutable_epoch()->add_predictions() = MakePredictions(2, 100, 0.8f, 0);
  *finish.mutable_finish()->mutable_lease() = b.lease;
  finish.mutable_finish()->set_outcome(v1::SUCCEEDED);
  env_.set_full(true);
  const PreparedReport p_full = store_->reports().PrepareReport(&full);
  const PreparedReport p_finish = store_->reports().PrepareReport(&finish);
  // Not written, so not dropped: the report still holds its bytes.
  EXPECT_FALSE(full.epoch().predictions(0).probabilities().empty());
  EXPECT_TRUE(p_full.checked.ok());
  EXPECT_TRUE(IsStorageFull(p_full.appended)) << p_full.appended;
  res = store_->reports().StoreReports({&full, &finish}, {&p_full, &p_finish});
  EXPECT_TRUE(IsStorageFull(res[0].status)) << res[0].status;
  EXPECT_EQ(res[1].status.code(), absl::StatusCode::kAborted) << res[1].status;
  auto job = store_->sweeps().GetJob(b.lease.job_id());
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), v1::RUNNING);
  env_.set_full(false);
}

// Kept predictions prepared under a lease the store never gave (a forged
// token) are not appended while preparing, and are refused when stored:
// a worker token alone cannot grow the predictions file.
TEST_F(ReportLogTest, AForgedLeasesPredictionsNeverReachTheFile) {
  store_->sweeps().CreateSweep(Spec("forged", 1)).IgnoreError();
  Assignment a = Acquire(Worker());
  v1::ReportEpochRequest first;
  *first.mutable_lease() = a.lease;
  *first.add_metrics() = Metrics(1, "test", 0.1);
  *first.add_predictions() = MakePredictions(1, 100, 0.8f, 0);
  ASSERT_TRUE(store_->reports().ReportEpoch(first).ok());
  const std::string file = path_ + ".predictions";
  const auto before = fs::file_size(file);
  v1::WorkerReport forged;
  *forged.mutable_epoch()->mutable_lease() = a.lease;
  forged.mutable_epoch()->mutable_lease()->set_token(std::string(32, 'f'));
  *forged.mutable_epoch()->add_metrics() = Metrics(2, "test", 0.1);
  *forged.mutable_epoch()->add_predictions() = MakePredictions(2, 100, 0.8f, 0);
  for (int i = 0; i < 50; ++i) {
    v1::WorkerReport copy = forged;
    const PreparedReport p = store_->reports().PrepareReport(&copy);
    EXPECT_FALSE(p.in_file());
    const v1::WorkerReport* r = &copy;
    const PreparedReport* pp = &p;
    EXPECT_EQ(store_->reports().StoreReports({&r, 1}, {&pp, 1})[0]
                  .status.code(),
              absl::StatusCode::kPermissionDenied);
  }
  EXPECT_EQ(fs::file_size(file), before);
}

TEST_F(ReportLogTest, AStreamedReportOfACancelledJobIsRefusedSayingCancelled) {
  store_->sweeps().CreateSweep(Spec("cancelled", 1)).IgnoreError();
  Assignment a = Acquire(Worker());
  ASSERT_TRUE(store_->sweeps().CancelJob(a.lease.job_id()).ok());
  v1::WorkerReport r;
  *r.mutable_epoch()->mutable_lease() = a.lease;
  *r.mutable_epoch()->add_metrics() = Metrics(1, "test", 0.1);
  std::vector<ReportResult> res = store_->reports().StoreReports({&r});
  EXPECT_EQ(res[0].status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(res[0].state, v1::CANCELLED);
  EXPECT_EQ(CountRows(""), 0);
}

TEST_F(ReportLogTest, ConcurrentReportsAreFencedEachOnItsOwn) {
  // Eight jobs reported from eight threads at once, with a
  // ninth thread sending stale reports in between: every good report is
  // stored once, every stale one is refused, and none disturbs another.
  v1::SweepSpec s = Spec("group", 1, /*epochs=*/40);
  s.clear_seeds();
  for (int i = 0; i < 9; ++i) s.add_seeds(i);
  s.clear_methods();
  s.add_methods()->set_name("baseline");
  ASSERT_TRUE(store_->sweeps().CreateSweep(s).ok());
  int64_t w = Worker();
  std::vector<Assignment> live;
  for (int i = 0; i < 8; ++i) live.push_back(Acquire(w));
  Assignment doomed = Acquire(w);
  ASSERT_TRUE(store_->sweeps()
                  .CancelJob(doomed.lease.job_id())
                  .ok());  // its lease is now stale
  std::atomic<int> failures{0}, refused{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      for (uint32_t e = 1; e <= 40; ++e) {
        if (!store_->reports()
                 .ReportEpoch(live[i].lease, {Metrics(e, "test", 0.01 * i)})
                 .ok())
          failures++;
      }
    });
  }
  threads.emplace_back([&] {
    for (uint32_t e = 1; e <= 40; ++e) {
      if (absl::IsFailedPrecondition(store_->reports().ReportEpoch(
              doomed.lease, {Metrics(e, "test", 0.5)})))
        refused++;
    }
  });
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(refused.load(), 40);
  EXPECT_EQ(CountRows("test"), 8 * 40);
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(store_->sweeps().GetJob(live[i].lease.job_id())->last_epoch(),
              40u);
  EXPECT_EQ(store_->sweeps().GetJob(doomed.lease.job_id())->last_epoch(), 0u);
}

}  // namespace
}  // namespace mixcal::storage
