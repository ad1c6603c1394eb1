#ifndef MIXCAL_TESTS_SERVER_API_FIXTURE_H_
#define MIXCAL_TESTS_SERVER_API_FIXTURE_H_

// What the coordinator's API tests share: a coordinator in this process on
// 127.0.0.1:0 over a store in a fresh directory, called over real sockets
// through both services' stubs, with or without a tokens file (one token
// per role). A concern's tests derive their own suite from ApiTest:
//
//   class DispatcherTest : public ApiTest {};
//   TEST_F(DispatcherTest, EmptyLongPollReturnsAfterItsWait) {
//     Start(/*tokens=*/false);
//     ... Acquire(Register()) ...
//   }

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <utility>

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "mixcal/v1/experiment.grpc.pb.h"
#include "mixcal/v1/worker.grpc.pb.h"
#include "server/coordinator.h"
#include "tests/scratch_dir.h"

namespace mixcal::server {

inline constexpr char kAdmin[] = "admin-token-0123456789";
inline constexpr char kSubmit[] = "submit-token-0123456789";
inline constexpr char kSubmit2[] = "submit2-token-0123456789";
inline constexpr char kRead[] = "read-token-0123456789";
inline constexpr char kWorker[] = "worker-token-0123456789";

// One job: baseline on cpu, 2 epochs (add seeds for more).
inline v1::SweepSpec Spec(const std::string& name) {
  v1::SweepSpec s;
  s.set_name(name);
  s.mutable_data()->set_dataset("synthetic");
  s.set_model("mlp");
  s.mutable_training()->set_epochs(2);
  s.add_methods()->set_name("baseline");
  s.set_device("cpu");
  return s;
}

// The test split's metrics at `epoch`: 100 examples in the last of 15 bins.
inline v1::EpochMetrics TestMetrics(uint32_t epoch) {
  v1::EpochMetrics m;
  m.set_epoch(epoch);
  m.set_split("test");
  m.set_count(100);
  m.set_accuracy(0.9);
  for (int b = 0; b < 15; ++b) {
    v1::ReliabilityBin* bin = m.add_bins();
    bin->set_count(b == 14 ? 100 : 0);
    bin->set_confidence_sum(b == 14 ? 97.0 : 0);
    bin->set_correct(b == 14 ? 90 : 0);
  }
  return m;
}

class ApiTest : public ::testing::Test {
 protected:
  void Start(bool tokens, double lease_s = 30, size_t watch_buffer = 0,
             int max_watchers_per_caller = 0) {
    dir_ = ::mixcal::testing::FreshTestDir("api");
    CoordinatorOptions o;
    o.listen = "127.0.0.1:0";
    o.db_path = (dir_ / "mixcal.db").string();
    o.lease_ms = static_cast<int64_t>(lease_s * 1000);
    o.heartbeat_ms = o.lease_ms / 4;
    if (watch_buffer > 0) o.watch_buffer_bytes = watch_buffer;
    if (max_watchers_per_caller > 0)
      o.max_watchers_per_caller = max_watchers_per_caller;
    if (tokens) {
      o.tokens_file = (dir_ / "tokens").string();
      std::ofstream(o.tokens_file) << "# token role name\n"
                                   << kAdmin << " admin alice\n"
                                   << kSubmit << " submit bob\n"
                                   << kSubmit2 << " submit dave\n"
                                   << kRead << " read carol\n"
                                   << kWorker << " worker gpu-box\n";
    }
    auto c = Coordinator::Start(o);
    ASSERT_TRUE(c.ok()) << c.status();
    coordinator_ = std::move(*c);
    grpc::ChannelArguments args;
    args.SetMaxSendMessageSize(64 << 20);
    channel_ = grpc::CreateCustomChannel(
        "127.0.0.1:" + std::to_string(coordinator_->port()),
        grpc::InsecureChannelCredentials(), args);
    api_ = v1::ExperimentService::NewStub(channel_);
    workers_ = v1::WorkerService::NewStub(channel_);
  }
  void TearDown() override {
    coordinator_.reset();
    std::filesystem::remove_all(dir_);
  }
  static void Auth(grpc::ClientContext& ctx, const std::string& token) {
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
  }
  // `key`, when given, receives the worker's key.
  int64_t Register(const std::string& token = "", std::string* key = nullptr) {
    grpc::ClientContext ctx;
    Auth(ctx, token);
    v1::RegisterWorkerRequest req;
    req.set_host("test");
    req.set_device("cpu");
    v1::RegisterWorkerResponse resp;
    EXPECT_TRUE(workers_->RegisterWorker(&ctx, req, &resp).ok());
    if (key != nullptr) *key = resp.worker_key();
    return resp.worker_id();
  }
  // One long poll of up to 3 s for worker w.
  v1::AcquireJobResponse Acquire(int64_t w, const std::string& token = "") {
    grpc::ClientContext ctx;
    Auth(ctx, token);
    v1::AcquireJobRequest req;
    req.set_worker_id(w);
    req.set_wait_ms(3000);
    v1::AcquireJobResponse resp;
    EXPECT_TRUE(workers_->AcquireJob(&ctx, req, &resp).ok());
    return resp;
  }
  grpc::Status Submit(const v1::SweepSpec& spec, v1::Sweep* out,
                      const std::string& token = "") {
    grpc::ClientContext ctx;
    Auth(ctx, token);
    v1::SubmitSweepRequest req;
    *req.mutable_spec() = spec;
    return api_->SubmitSweep(&ctx, req, out);
  }

  std::filesystem::path dir_;
  std::unique_ptr<Coordinator> coordinator_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ExperimentService::Stub> api_;
  std::unique_ptr<v1::WorkerService::Stub> workers_;
};

}  // namespace mixcal::server

#endif  // MIXCAL_TESTS_SERVER_API_FIXTURE_H_
