// WatchSweep (server/watch_hub.h): a watcher that does not read is cut
// off once its buffer is full, and nobody else is held up.

#include <chrono>

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

}  // namespace
}  // namespace mixcal::server
