// WatchSweep (server/watch_hub.h): a watcher that does not read is cut
// off once its buffer is full, and nobody else is held up.

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "tests/server/api_fixture.h"

namespace mixcal::server {
namespace {

class WatchHubTest : public ApiTest {};

TEST_F(WatchHubTest, AWatcherThatDoesNotReadIsCutOffNotBuffered) {
  Start(false, 30, /*watch_buffer=*/32 << 10);
  v1::Sweep sweep;
  ASSERT_TRUE(Submit(Spec("slow-watcher"), &sweep).ok());
  // The watcher has a connection of its own and never reads.
  auto watch_channel =
      grpc::CreateChannel("127.0.0.1:" + std::to_string(coordinator_->port()),
                          grpc::InsecureChannelCredentials());
  auto watch_api = v1::ExperimentService::NewStub(watch_channel);
  grpc::ClientContext watch_ctx;
  watch_ctx.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(60));
  v1::WatchSweepRequest wr;
  wr.set_sweep_id(sweep.id());
  auto reader = watch_api->WatchSweep(&watch_ctx, wr);
  const int64_t w = Register();
  v1::AcquireJobResponse a = Acquire(w);
  ASSERT_TRUE(a.has_job());
  // Each report (1,000 bins, about 15 KB) is an update for the watcher:
  // far more than its buffer and the transport's windows together.
  constexpr int kReports = 1500;
  for (int i = 0; i < kReports; ++i) {
    grpc::ClientContext ctx;
    v1::ReportEpochRequest r;
    *r.mutable_lease() = a.lease();
    v1::EpochMetrics* m = r.add_metrics();
    m->set_epoch(1);
    m->set_split("test");
    m->set_count(100);
    for (int b = 0; b < 1000; ++b) {
      v1::ReliabilityBin* bin = m->add_bins();
      bin->set_count(b == 999 ? 100 : 0);
      bin->set_confidence_sum(b == 999 ? 99.95 : 0);
      bin->set_correct(b == 999 ? 90 : 0);
    }
    v1::ReportEpochResponse resp;
    grpc::Status rs = workers_->ReportEpoch(&ctx, r, &resp);
    ASSERT_TRUE(rs.ok()) << rs.error_message();
  }
  // Now it reads: what was in flight, then the end.
  v1::SweepUpdate u;
  int read = 0;
  while (reader->Read(&u)) ++read;
  grpc::Status st = reader->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << st.error_message() << " after " << read << " updates";
  EXPECT_LT(read, kReports);
  // Everyone else is unaffected.
  grpc::ClientContext ctx;
  v1::GetSweepRequest g;
  g.set_sweep_id(sweep.id());
  v1::Sweep again;
  EXPECT_TRUE(api_->GetSweep(&ctx, g, &again).ok());
}

// One caller may hold --max_watchers_per_caller open watchers: the next is
// refused naming the flag, another caller is not held up by it, and a
// closed watcher's place is free again.
TEST_F(WatchHubTest, OneCallerMayOpenOnlySoManyWatchers) {
  Start(/*tokens=*/true, 30, 0, /*max_watchers_per_caller=*/2);
  v1::Sweep sweep;
  {
    grpc::ClientContext ctx;
    Auth(ctx, kSubmit);
    v1::SubmitSweepRequest req;
    *req.mutable_spec() = Spec("watched");
    ASSERT_TRUE(api_->SubmitSweep(&ctx, req, &sweep).ok());
  }
  struct Watcher {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReader<v1::SweepUpdate>> reader;
  };
  // Opens a watcher and reads its first update (the stream is up), or
  // returns the status it ended with.
  auto open = [&](const std::string& token, Watcher* w) {
    Auth(w->ctx, token);
    w->ctx.set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(30));
    v1::WatchSweepRequest wr;
    wr.set_sweep_id(sweep.id());
    w->reader = api_->WatchSweep(&w->ctx, wr);
    v1::SweepUpdate u;
    if (w->reader->Read(&u)) return grpc::Status::OK;
    return w->reader->Finish();
  };
  Watcher a, b, c, other;
  ASSERT_TRUE(open(kRead, &a).ok());
  ASSERT_TRUE(open(kRead, &b).ok());
  grpc::Status third = open(kRead, &c);
  EXPECT_EQ(third.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << third.error_message();
  EXPECT_NE(third.error_message().find("--max_watchers_per_caller"),
            std::string::npos)
      << third.error_message();
  EXPECT_NE(third.error_message().find("carol"), std::string::npos)
      << third.error_message();
  EXPECT_TRUE(open(kAdmin, &other).ok());  // alice is another caller
  // Carol closes one: her next watcher is let in (once the server has
  // seen the close).
  a.ctx.TryCancel();
  a.reader->Finish();
  bool reopened = false;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!reopened && std::chrono::steady_clock::now() < deadline) {
    auto again = std::make_unique<Watcher>();
    reopened = open(kRead, again.get()).ok();
    if (reopened) {
      again->ctx.TryCancel();
      again->reader->Finish();
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  EXPECT_TRUE(reopened);
  for (Watcher* w : {&b, &other}) {
    w->ctx.TryCancel();
    w->reader->Finish();
  }
}

}  // namespace
}  // namespace mixcal::server
