// AcquireJob's long poll (server/dispatcher.h): a waiting worker gets a
// new job at once; an empty poll returns after its wait.

#include <chrono>
#include <future>
#include <thread>
#include <utility>

#include "tests/server/api_fixture.h"

namespace mixcal::server {
namespace {

class DispatcherTest : public ApiTest {};

TEST_F(DispatcherTest, LongPollHandsANewJobToAWaitingWorkerAtOnce) {
  Start(false);
  const int64_t w = Register();
  auto waiting = std::async(std::launch::async, [&] {
    grpc::ClientContext ctx;
    v1::AcquireJobRequest req;
    req.set_worker_id(w);
    req.set_wait_ms(20000);
    v1::AcquireJobResponse resp;
    grpc::Status s = workers_->AcquireJob(&ctx, req, &resp);
    return std::make_pair(s, std::chrono::steady_clock::now());
  });
  std::this_thread::sleep_for(
      std::chrono::milliseconds(300));  // the worker is waiting
  const auto submitted = std::chrono::steady_clock::now();
  v1::Sweep sweep;
  ASSERT_TRUE(Submit(Spec("poll"), &sweep).ok());
  auto [status, got] = waiting.get();
  ASSERT_TRUE(status.ok());
  // Far below the 20 s wait: the submit woke it. (Latency is measured in
  // bench/, not asserted here.)
  EXPECT_LT(std::chrono::duration<double>(got - submitted).count(), 5.0);
}

TEST_F(DispatcherTest, EmptyLongPollReturnsAfterItsWait) {
  Start(false);
  const int64_t w = Register();
  grpc::ClientContext ctx;
  v1::AcquireJobRequest req;
  req.set_worker_id(w);
  req.set_wait_ms(200);
  v1::AcquireJobResponse resp;
  ASSERT_TRUE(workers_->AcquireJob(&ctx, req, &resp).ok());
  EXPECT_FALSE(resp.has_job());
}

// An idle worker sends no heartbeats; its long polls are its sign of life,
// or `mixcal workers` (and the launcher's idle count) would take a worker
// waiting for work a minute for gone.
TEST_F(DispatcherTest, AnIdleWorkersLongPollCountsAsHeardFrom) {
  Start(false);
  const int64_t w = Register();
  auto heard = [&] {
    grpc::ClientContext ctx;
    v1::ListWorkersResponse resp;
    EXPECT_TRUE(api_->ListWorkers(&ctx, v1::ListWorkersRequest(), &resp).ok());
    for (const auto& worker : resp.workers()) {
      if (worker.id() == w) return worker.last_heartbeat_us();
    }
    ADD_FAILURE() << "no worker " << w;
    return int64_t{0};
  };
  const int64_t registered = heard();
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  grpc::ClientContext ctx;
  v1::AcquireJobRequest req;
  req.set_worker_id(w);
  req.set_wait_ms(200);
  v1::AcquireJobResponse resp;
  ASSERT_TRUE(workers_->AcquireJob(&ctx, req, &resp).ok());
  ASSERT_FALSE(resp.has_job());
  EXPECT_GE(heard() - registered, 1'000'000);
}

}  // namespace
}  // namespace mixcal::server
