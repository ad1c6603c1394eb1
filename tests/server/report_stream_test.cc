// StreamReports (server/report_stream.h, report_writer.h): acks in order,
// each with its report's own status; thousands of reports past the
// window; kept predictions; streams cancelled midway.

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "tests/server/api_fixture.h"

namespace mixcal::server {
namespace {

class ReportStreamTest : public ApiTest {};

TEST_F(ReportStreamTest, ReportStreamAcksEachReportInOrderWithItsOwnStatus) {
  Start(false);
  v1::Sweep sweep;
  ASSERT_TRUE(Submit(Spec("stream"), &sweep).ok());
  const v1::AcquireJobResponse a = Acquire(Register());
  ASSERT_TRUE(a.has_job());
  auto epoch = [&](uint32_t e, uint32_t attempt) {
    v1::WorkerReport r;
    *r.mutable_epoch()->mutable_lease() = a.lease();
    r.mutable_epoch()->mutable_lease()->set_attempt(attempt);
    v1::EpochMetrics* m = r.mutable_epoch()->add_metrics();
    m->set_epoch(e);
    m->set_split("test");
    m->set_count(10);
    v1::ReliabilityBin* bin = m->add_bins();
    bin->set_count(10);
    bin->set_confidence_sum(0.1 + 0.2 + 8);
    bin->set_correct(9);
    return r;
  };
  const uint32_t attempt = a.lease().attempt();
  std::vector<v1::WorkerReport> out = {epoch(1, attempt),
                                       epoch(1, attempt + 3),  // stale
                                       v1::WorkerReport(),     // empty
                                       epoch(2, attempt)};
  v1::WorkerReport finish;
  *finish.mutable_finish()->mutable_lease() = a.lease();
  finish.mutable_finish()->set_outcome(v1::SUCCEEDED);
  out.push_back(finish);
  out.push_back(epoch(3, attempt));  // after the finish: refused
  for (size_t i = 0; i < out.size(); ++i) out[i].set_sequence(100 + i);

  grpc::ClientContext ctx;
  auto stream = workers_->StreamReports(&ctx);
  for (const auto& r : out) ASSERT_TRUE(stream->Write(r));
  stream->WritesDone();
  std::vector<v1::ReportAck> acks;
  v1::ReportAcks msg;
  while (stream->Read(&msg))
    acks.insert(acks.end(), msg.acks().begin(), msg.acks().end());
  grpc::Status end = stream->Finish();
  ASSERT_TRUE(end.ok()) << end.error_message();
  ASSERT_EQ(acks.size(), out.size());
  const std::vector<grpc::StatusCode> want = {
      grpc::StatusCode::OK,
      grpc::StatusCode::FAILED_PRECONDITION,
      grpc::StatusCode::INVALID_ARGUMENT,
      grpc::StatusCode::OK,
      grpc::StatusCode::OK,
      grpc::StatusCode::FAILED_PRECONDITION};
  for (size_t i = 0; i < acks.size(); ++i) {
    EXPECT_EQ(acks[i].sequence(), 100 + i);
    EXPECT_EQ(acks[i].code(), want[i]) << i << ": " << acks[i].message();
  }
  EXPECT_NE(acks[1].message().find("stale lease"), std::string::npos);
  EXPECT_EQ(acks[4].state(), v1::SUCCEEDED);

  grpc::ClientContext qctx;
  v1::QueryMetricsRequest q;
  q.mutable_filter()->set_include_bins(true);
  q.mutable_filter()->set_sweep_id(sweep.id());
  v1::QueryMetricsResponse rows;
  ASSERT_TRUE(api_->QueryMetrics(&qctx, q, &rows).ok());
  ASSERT_EQ(rows.rows_size(), 2);
  EXPECT_EQ(rows.rows(0).epoch(), 1u);
  EXPECT_EQ(rows.rows(1).epoch(), 2u);
  EXPECT_EQ(rows.rows(1).bins(0).confidence_sum(), 0.1 + 0.2 + 8);
  grpc::ClientContext jctx;
  v1::GetJobRequest jreq;
  jreq.set_job_id(a.job().id());
  v1::Job job;
  ASSERT_TRUE(api_->GetJob(&jctx, jreq, &job).ok());
  EXPECT_EQ(job.state(), v1::SUCCEEDED);
  EXPECT_EQ(job.last_epoch(), 2u);
}

TEST_F(ReportStreamTest, ThousandsOfReportsOnOneStreamAreAckedOnceEachInOrder) {
  Start(false);
  v1::Sweep sweep;
  v1::SweepSpec spec = Spec("many");
  spec.mutable_training()->set_epochs(5000);
  ASSERT_TRUE(Submit(spec, &sweep).ok());
  const v1::AcquireJobResponse a = Acquire(Register());
  ASSERT_TRUE(a.has_job());
  // More than the 1,024 a stream may have unacknowledged, written without
  // reading: the coordinator pauses and resumes reading, losing nothing.
  constexpr int kReports = 5000;
  grpc::ClientContext ctx;
  auto stream = workers_->StreamReports(&ctx);
  std::thread writer([&] {
    v1::WorkerReport r;
    *r.mutable_epoch()->mutable_lease() = a.lease();
    v1::EpochMetrics* m = r.mutable_epoch()->add_metrics();
    m->set_split("test");
    for (int e = 1; e <= kReports; ++e) {
      r.set_sequence(e);
      m->set_epoch(e);
      m->set_accuracy(e / 10000.0);
      if (!stream->Write(r)) return;
    }
    stream->WritesDone();
  });
  std::vector<uint64_t> acked;
  v1::ReportAcks msg;
  while (stream->Read(&msg)) {
    for (const auto& ack : msg.acks()) {
      EXPECT_EQ(ack.code(), 0) << ack.message();
      acked.push_back(ack.sequence());
    }
  }
  writer.join();
  ASSERT_TRUE(stream->Finish().ok());
  ASSERT_EQ(acked.size(), static_cast<size_t>(kReports));
  for (int i = 0; i < kReports; ++i) ASSERT_EQ(acked[i], i + 1u);
  grpc::ClientContext jctx;
  v1::GetJobRequest jreq;
  jreq.set_job_id(a.job().id());
  v1::Job job;
  ASSERT_TRUE(api_->GetJob(&jctx, jreq, &job).ok());
  EXPECT_EQ(job.last_epoch(), static_cast<uint32_t>(kReports));
  v1::QueryMetricsRequest q;
  q.mutable_filter()->set_page_size(10000);
  q.mutable_filter()->set_sweep_id(sweep.id());
  grpc::ClientContext qctx;
  v1::QueryMetricsResponse rows;
  ASSERT_TRUE(api_->QueryMetrics(&qctx, q, &rows).ok());
  EXPECT_EQ(rows.rows_size(), kReports);

  // A stream still open when the coordinator shuts down ends with it.
  grpc::ClientContext open_ctx;
  auto open = workers_->StreamReports(&open_ctx);
  v1::WorkerReport r;
  r.set_sequence(1);
  ASSERT_TRUE(open->Write(r));
  ASSERT_TRUE(open->Read(&msg));  // its ack: the coordinator has the stream
  coordinator_.reset();
  open->Read(&msg);
  EXPECT_FALSE(open->Finish().ok());
}

TEST_F(ReportStreamTest,
       KeptPredictionsOnAStreamKeepTheirOrderAndSurviveCancels) {
  Start(false);
  v1::Sweep sweep;
  v1::SweepSpec spec = Spec("kept");
  spec.mutable_training()->set_epochs(3);
  spec.mutable_evaluation()->set_predictions("every_n");
  spec.mutable_evaluation()->set_predictions_every(1);
  ASSERT_TRUE(Submit(spec, &sweep).ok());
  const v1::AcquireJobResponse a = Acquire(Register());
  ASSERT_TRUE(a.has_job());
  // Their bytes are written on a preparing thread; the reports after them
  // (the finish) must still be stored after them.
  constexpr int kRows = 3000, kClasses = 10;
  std::string probs, labels;
  for (int i = 0; i < kRows; ++i) {
    for (int k = 0; k < kClasses; ++k) {
      const uint16_t h = static_cast<uint16_t>((i * 7 + k * 13) % 0x3c00);
      probs.push_back(static_cast<char>(h & 0xff));
      probs.push_back(static_cast<char>(h >> 8));
    }
    const int32_t y = i % kClasses;
    labels.append(reinterpret_cast<const char*>(&y), 4);
  }
  auto report = [&](uint32_t e, bool keep) {
    v1::WorkerReport r;
    r.set_sequence(e);
    *r.mutable_epoch()->mutable_lease() = a.lease();
    v1::EpochMetrics* m = r.mutable_epoch()->add_metrics();
    m->set_epoch(e);
    m->set_split("test");
    m->set_count(kRows);
    if (keep) {
      v1::Predictions* p = r.mutable_epoch()->add_predictions();
      p->set_epoch(e);
      p->set_split("test");
      p->set_count(kRows);
      p->set_classes(kClasses);
      p->set_probabilities(probs);
      p->set_labels(labels);
    }
    return r;
  };
  std::vector<v1::WorkerReport> out = {report(1, false), report(2, true),
                                       report(3, true)};
  v1::WorkerReport finish;
  finish.set_sequence(4);
  *finish.mutable_finish()->mutable_lease() = a.lease();
  finish.mutable_finish()->set_outcome(v1::SUCCEEDED);
  out.push_back(finish);
  {
    grpc::ClientContext ctx;
    auto stream = workers_->StreamReports(&ctx);
    for (const auto& r : out) ASSERT_TRUE(stream->Write(r));  // no waiting
    stream->WritesDone();
    std::vector<v1::ReportAck> acks;
    v1::ReportAcks msg;
    while (stream->Read(&msg))
      acks.insert(acks.end(), msg.acks().begin(), msg.acks().end());
    ASSERT_TRUE(stream->Finish().ok());
    ASSERT_EQ(acks.size(), out.size());
    for (size_t i = 0; i < acks.size(); ++i) {
      EXPECT_EQ(acks[i].sequence(), i + 1);
      EXPECT_EQ(acks[i].code(), 0) << i << ": " << acks[i].message();
    }
    EXPECT_EQ(acks[3].state(), v1::SUCCEEDED);
  }
  for (uint32_t e : {2u, 3u}) {
    grpc::ClientContext ctx;
    v1::GetPredictionsRequest req;
    req.set_job_id(a.job().id());
    req.set_epoch(e);
    auto reader = api_->GetPredictions(&ctx, req);
    std::string got_probs, got_labels;
    v1::Predictions chunk;
    while (reader->Read(&chunk)) {
      got_probs += chunk.probabilities();
      got_labels += chunk.labels();
    }
    ASSERT_TRUE(reader->Finish().ok()) << e;
    EXPECT_EQ(got_probs, probs) << e;  // bit for bit
    EXPECT_EQ(got_labels, labels) << e;
  }

  // Streams cancelled while their kept predictions are being written: the
  // coordinator goes on serving (a stream ends only once nothing of it is
  // left with the preparing threads or the writer).
  for (int round = 0; round < 20; ++round) {
    grpc::ClientContext ctx;
    auto stream = workers_->StreamReports(&ctx);
    for (uint32_t e = 1; e <= 5; ++e) {
      if (!stream->Write(report(e, true))) break;
    }
    ctx.TryCancel();
    stream->Finish();
  }
  grpc::ClientContext jctx;
  v1::GetJobRequest jreq;
  jreq.set_job_id(a.job().id());
  v1::Job job;
  ASSERT_TRUE(api_->GetJob(&jctx, jreq, &job).ok());
  EXPECT_EQ(job.state(), v1::SUCCEEDED);
  EXPECT_EQ(job.last_epoch(), 3u);
}

TEST_F(ReportStreamTest,
       ReportStreamsCancelledMidwayLeaveTheCoordinatorServing) {
  Start(false);
  v1::Sweep sweep;
  ASSERT_TRUE(Submit(Spec("cancel"), &sweep).ok());
  for (int round = 0; round < 20; ++round) {
    grpc::ClientContext ctx;
    auto stream = workers_->StreamReports(&ctx);
    for (int i = 0; i < 50; ++i) {
      v1::WorkerReport r;
      r.set_sequence(i);
      r.mutable_epoch()->mutable_lease()->set_job_id(sweep.job_ids(0));
      v1::EpochMetrics* m = r.mutable_epoch()->add_metrics();
      m->set_epoch(1);
      m->set_split("test");
      if (!stream->Write(r)) break;
    }
    ctx.TryCancel();
    stream->Finish();
  }
  grpc::ClientContext ctx;
  v1::ListSweepsResponse list;
  ASSERT_TRUE(api_->ListSweeps(&ctx, v1::ListSweepsRequest(), &list).ok());
  EXPECT_EQ(list.sweeps_size(), 1);
}

}  // namespace
}  // namespace mixcal::server
