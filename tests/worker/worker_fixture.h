#ifndef MIXCAL_TESTS_WORKER_WORKER_FIXTURE_H_
#define MIXCAL_TESTS_WORKER_WORKER_FIXTURE_H_

// A coordinator in this process (real gRPC on 127.0.0.1, real SQLite) and a
// worker's side of it: registered, holding the lease of a queued job, for
// the tests of the agent's parts (heartbeater, report sender).

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "mixcal/v1/experiment.grpc.pb.h"
#include "mixcal/v1/worker.grpc.pb.h"
#include "server/coordinator.h"
#include "tests/scratch_dir.h"

namespace mixcal::worker {

class WorkerFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::mixcal::testing::FreshTestDir("worker");
    server::CoordinatorOptions o;
    o.listen = "127.0.0.1:0";
    o.db_path = (dir_ / "mixcal.db").string();
    o.lease_ms = 30000;
    o.heartbeat_ms = 200;
    auto c = server::Coordinator::Start(o);
    ASSERT_TRUE(c.ok()) << c.status();
    coordinator_ = std::move(*c);
    address_ = "127.0.0.1:" + std::to_string(coordinator_->port());
    auto channel =
        grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
    api_ = v1::ExperimentService::NewStub(channel);
    workers_ = v1::WorkerService::NewStub(channel);
  }
  void TearDown() override {
    coordinator_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Submits a one-job sweep, registers a worker and leases the job to it.
  void LeaseAJob() {
    v1::SubmitSweepRequest submit;
    v1::SweepSpec* s = submit.mutable_spec();
    s->set_name("worker");
    s->mutable_data()->set_dataset("synthetic");
    s->set_model("mlp");
    s->mutable_training()->set_epochs(3);
    s->add_methods()->set_name("baseline");
    s->add_seeds(0);
    {
      grpc::ClientContext ctx;
      v1::Sweep sweep;
      grpc::Status st = api_->SubmitSweep(&ctx, submit, &sweep);
      ASSERT_TRUE(st.ok()) << st.error_message();
      sweep_id_ = sweep.id();
    }
    {
      v1::RegisterWorkerRequest req;
      req.set_host("test");
      req.set_device("cpu");
      grpc::ClientContext ctx;
      v1::RegisterWorkerResponse resp;
      ASSERT_TRUE(workers_->RegisterWorker(&ctx, req, &resp).ok());
      worker_id_ = resp.worker_id();
    }
    v1::AcquireJobRequest req;
    req.set_worker_id(worker_id_);
    req.set_wait_ms(5000);
    grpc::ClientContext ctx;
    v1::AcquireJobResponse resp;
    ASSERT_TRUE(workers_->AcquireJob(&ctx, req, &resp).ok());
    ASSERT_TRUE(resp.has_job());
    lease_ = resp.lease();
  }

  v1::Job Job() {
    v1::GetJobRequest req;
    req.set_job_id(lease_.job_id());
    grpc::ClientContext ctx;
    v1::Job job;
    EXPECT_TRUE(api_->GetJob(&ctx, req, &job).ok());
    return job;
  }
  void CancelJob() {
    v1::CancelJobRequest req;
    req.set_job_id(lease_.job_id());
    grpc::ClientContext ctx;
    v1::Job job;
    grpc::Status st = api_->CancelJob(&ctx, req, &job);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  int Rows() {
    v1::QueryMetricsRequest req;
    req.mutable_filter()->set_sweep_id(sweep_id_);
    grpc::ClientContext ctx;
    v1::QueryMetricsResponse resp;
    EXPECT_TRUE(api_->QueryMetrics(&ctx, req, &resp).ok());
    return resp.rows_size();
  }

  std::filesystem::path dir_;
  std::unique_ptr<server::Coordinator> coordinator_;
  std::string address_;
  std::unique_ptr<v1::ExperimentService::Stub> api_;
  std::unique_ptr<v1::WorkerService::Stub> workers_;
  int64_t sweep_id_ = 0;
  int64_t worker_id_ = 0;
  v1::Lease lease_;
};

}  // namespace mixcal::worker

#endif  // MIXCAL_TESTS_WORKER_WORKER_FIXTURE_H_
