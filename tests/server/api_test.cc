// The coordinator in this process on 127.0.0.1:0, called over real sockets.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/scratch_dir.h"
#include "mixcal/v1/experiment.grpc.pb.h"
#include "mixcal/v1/worker.grpc.pb.h"
#include "base/address.h"
#include "server/coordinator.h"

namespace mixcal::server {
namespace {

namespace fs = std::filesystem;

constexpr char kAdmin[] = "admin-token-0123456789";
constexpr char kSubmit[] = "submit-token-0123456789";
constexpr char kRead[] = "read-token-0123456789";
constexpr char kWorker[] = "worker-token-0123456789";

v1::SweepSpec Spec(const std::string& name) {
  v1::SweepSpec s;
  s.set_name(name);
  s.mutable_data()->set_dataset("synthetic");
  s.set_model("mlp");
  s.mutable_training()->set_epochs(2);
  s.add_methods()->set_name("baseline");
  s.set_device("cpu");
  return s;
}

class ApiTest : public ::testing::Test {
 protected:
  void Start(bool tokens, double lease_s = 30, size_t watch_buffer = 0) {
    dir_ = ::mixcal::testing::FreshTestDir("api");
    CoordinatorOptions o;
    o.listen = "127.0.0.1:0";
    o.db_path = (dir_ / "mixcal.db").string();
    o.lease_ms = static_cast<int64_t>(lease_s * 1000);
    o.heartbeat_ms = o.lease_ms / 4;
    if (watch_buffer > 0) o.watch_buffer_bytes = watch_buffer;
    if (tokens) {
      o.tokens_file = (dir_ / "tokens").string();
      std::ofstream(o.tokens_file) << "# token role name\n"
                                   << kAdmin << " admin alice\n"
                                   << kSubmit << " submit bob\n"
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
    fs::remove_all(dir_);
  }
  static void Auth(grpc::ClientContext& ctx, const std::string& token) {
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
  }
  int64_t Register(const std::string& token = "") {
    grpc::ClientContext ctx;
    Auth(ctx, token);
    v1::RegisterWorkerRequest req;
    req.set_host("test");
    req.set_device("cpu");
    v1::RegisterWorkerResponse resp;
    EXPECT_TRUE(workers_->RegisterWorker(&ctx, req, &resp).ok());
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

  fs::path dir_;
  std::unique_ptr<Coordinator> coordinator_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ExperimentService::Stub> api_;
  std::unique_ptr<v1::WorkerService::Stub> workers_;
};

TEST_F(ApiTest, AWatcherThatDoesNotReadIsCutOffNotBuffered) {
  Start(false, 30, /*watch_buffer=*/32 << 10);
  v1::Sweep sweep;
  ASSERT_TRUE(Submit(Spec("slow-watcher"), &sweep).ok());
  // The watcher has a connection of its own and never reads.
  auto watch_channel = grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(coordinator_->port()),
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

// Each RPC with the permission it needs.
enum Need { kReadCall, kWriteCall, kWorkerCall };

// What the auth matrix's calls act on.
struct Ids {
  int64_t sweep = 0, job = 0, cancelled_job = 0, worker = 0, ended_sweep = 0;
  v1::Lease lease;
};

v1::EpochMetrics TestMetrics(uint32_t epoch) {
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

TEST_F(ApiTest, AuthMatrixEveryRoleAgainstEveryRpc) {
  Start(/*tokens=*/true);
  // Fresh state for each call that should succeed, made as admin: a sweep
  // with a job leased to a worker (epoch 1 stored) and a cancelled job, and
  // a sweep that has ended.
  auto fresh = [&]() {
    Ids ids;
    v1::SweepSpec spec = Spec("auth");
    spec.add_seeds(0);
    spec.add_seeds(1);
    v1::Sweep sweep;
    EXPECT_TRUE(Submit(spec, &sweep, kAdmin).ok());
    ids.sweep = sweep.id();
    ids.worker = Register(kAdmin);
    v1::AcquireJobResponse a = Acquire(ids.worker, kAdmin);
    ids.job = a.job().id();
    ids.lease = a.lease();
    ids.cancelled_job =
        sweep.job_ids(0) == ids.job ? sweep.job_ids(1) : sweep.job_ids(0);
    {
      grpc::ClientContext ctx;
      Auth(ctx, kAdmin);
      v1::CancelJobRequest r;
      r.set_job_id(ids.cancelled_job);
      v1::Job j;
      EXPECT_TRUE(api_->CancelJob(&ctx, r, &j).ok());
    }
    {
      grpc::ClientContext ctx;
      Auth(ctx, kAdmin);
      v1::ReportEpochRequest r;
      *r.mutable_lease() = ids.lease;
      *r.add_metrics() = TestMetrics(1);
      v1::ReportEpochResponse resp;
      EXPECT_TRUE(workers_->ReportEpoch(&ctx, r, &resp).ok());
    }
    v1::Sweep ended;
    EXPECT_TRUE(Submit(Spec("auth-ended"), &ended, kAdmin).ok());
    ids.ended_sweep = ended.id();
    grpc::ClientContext ctx;
    Auth(ctx, kAdmin);
    v1::CancelSweepRequest r;
    r.set_sweep_id(ended.id());
    v1::Sweep out;
    EXPECT_TRUE(api_->CancelSweep(&ctx, r, &out).ok());
    return ids;
  };
  using Call =
      std::function<grpc::Status(grpc::ClientContext*, const Ids& ids)>;
  std::vector<std::tuple<std::string, Need, Call>> calls = {
      {"SubmitSweep", kWriteCall,
       [&](auto* c, const Ids& ids) {
         v1::SubmitSweepRequest r;
         *r.mutable_spec() = Spec("auth");
         v1::Sweep s;
         return api_->SubmitSweep(c, r, &s);
       }},
      {"GetSweep", kReadCall,
       [&](auto* c, const Ids& ids) {
         v1::GetSweepRequest r;
         r.set_sweep_id(ids.sweep);
         v1::Sweep s;
         return api_->GetSweep(c, r, &s);
       }},
      {"ListSweeps", kReadCall,
       [&](auto* c, const Ids& ids) {
         v1::ListSweepsRequest r;
         v1::ListSweepsResponse s;
         return api_->ListSweeps(c, r, &s);
       }},
      {"CancelSweep", kWriteCall,
       [&](auto* c, const Ids& ids) {
         v1::CancelSweepRequest r;
         r.set_sweep_id(ids.sweep);
         v1::Sweep s;
         return api_->CancelSweep(c, r, &s);
       }},
      {"GetJob", kReadCall,
       [&](auto* c, const Ids& ids) {
         v1::GetJobRequest r;
         r.set_job_id(ids.job);
         v1::Job s;
         return api_->GetJob(c, r, &s);
       }},
      {"ListJobs", kReadCall,
       [&](auto* c, const Ids& ids) {
         v1::ListJobsRequest r;
         v1::ListJobsResponse s;
         return api_->ListJobs(c, r, &s);
       }},
      {"CancelJob", kWriteCall,
       [&](auto* c, const Ids& ids) {
         v1::CancelJobRequest r;
         r.set_job_id(ids.job);
         v1::Job s;
         return api_->CancelJob(c, r, &s);
       }},
      {"RetryJob", kWriteCall,
       [&](auto* c, const Ids& ids) {
         v1::RetryJobRequest r;
         r.set_job_id(ids.cancelled_job);
         v1::Job s;
         return api_->RetryJob(c, r, &s);
       }},
      {"QueryMetrics", kReadCall,
       [&](auto* c, const Ids& ids) {
         v1::QueryMetricsRequest r;
         r.mutable_filter()->set_sweep_id(ids.sweep);
         v1::QueryMetricsResponse s;
         return api_->QueryMetrics(c, r, &s);
       }},
      {"SummarizeSweep", kReadCall,
       [&](auto* c, const Ids& ids) {
         v1::SummarizeSweepRequest r;
         r.set_sweep_id(ids.sweep);
         v1::SummarizeSweepResponse s;
         return api_->SummarizeSweep(c, r, &s);
       }},
      {"GetReliability", kReadCall,
       [&](auto* c, const Ids& ids) {
         v1::GetReliabilityRequest r;
         r.set_job_id(ids.job);
         v1::GetReliabilityResponse s;
         return api_->GetReliability(c, r, &s);
       }},
      {"ListWorkers", kReadCall,
       [&](auto* c, const Ids& ids) {
         v1::ListWorkersRequest r;
         v1::ListWorkersResponse s;
         return api_->ListWorkers(c, r, &s);
       }},
      {"ListEvents", kReadCall,
       [&](auto* c, const Ids& ids) {
         v1::ListEventsRequest r;
         v1::ListEventsResponse s;
         return api_->ListEvents(c, r, &s);
       }},
      {"WatchSweep", kReadCall,
       [&](auto* c, const Ids& ids) {
         v1::WatchSweepRequest r;
         r.set_sweep_id(ids.ended_sweep);  // a snapshot, then the end
         auto rd = api_->WatchSweep(c, r);
         v1::SweepUpdate u;
         while (rd->Read(&u)) {
         }
         return rd->Finish();
       }},
      {"RegisterWorker", kWorkerCall,
       [&](auto* c, const Ids& ids) {
         v1::RegisterWorkerRequest r;
         r.set_host("h");
         r.set_device("cpu");
         v1::RegisterWorkerResponse s;
         return workers_->RegisterWorker(c, r, &s);
       }},
      {"AcquireJob", kWorkerCall,
       [&](auto* c, const Ids& ids) {
         v1::AcquireJobRequest r;
         r.set_worker_id(ids.worker);
         r.set_wait_ms(1);
         v1::AcquireJobResponse s;
         return workers_->AcquireJob(c, r, &s);
       }},
      {"Heartbeat", kWorkerCall,
       [&](auto* c, const Ids& ids) {
         v1::HeartbeatRequest r;
         r.set_worker_id(ids.worker);
         *r.add_leases() = ids.lease;
         v1::HeartbeatResponse s;
         return workers_->Heartbeat(c, r, &s);
       }},
      {"ReportEpoch", kWorkerCall,
       [&](auto* c, const Ids& ids) {
         v1::ReportEpochRequest r;
         *r.mutable_lease() = ids.lease;
         *r.add_metrics() = TestMetrics(2);
         v1::ReportEpochResponse s;
         return workers_->ReportEpoch(c, r, &s);
       }},
      {"ReportCheckpoint", kWorkerCall,
       [&](auto* c, const Ids& ids) {
         v1::ReportCheckpointRequest r;
         *r.mutable_lease() = ids.lease;
         r.set_epoch(1);
         r.set_path("job-1/epoch-1.pt");
         v1::ReportCheckpointResponse s;
         return workers_->ReportCheckpoint(c, r, &s);
       }},
      {"FinishJob", kWorkerCall,
       [&](auto* c, const Ids& ids) {
         v1::FinishJobRequest r;
         *r.mutable_lease() = ids.lease;
         r.set_outcome(v1::SUCCEEDED);
         v1::FinishJobResponse s;
         return workers_->FinishJob(c, r, &s);
       }},
      {"LeaveRotation", kWorkerCall,
       [&](auto* c, const Ids& ids) {
         v1::LeaveRotationRequest r;
         r.set_worker_id(ids.worker);
         r.set_reason("stopped");
         v1::LeaveRotationResponse s;
         return workers_->LeaveRotation(c, r, &s);
       }},
      {"StreamReports", kWorkerCall,
       [&](auto* c, const Ids& ids) {
         auto stream = workers_->StreamReports(c);
         v1::WorkerReport r;
         r.set_sequence(1);
         *r.mutable_finish()->mutable_lease() = ids.lease;
         r.mutable_finish()->set_outcome(v1::SUCCEEDED);
         stream->Write(r);
         stream->WritesDone();
         v1::ReportAcks acks;
         bool refused = false;
         while (stream->Read(&acks)) {
           for (const auto& a : acks.acks()) refused |= a.code() != 0;
         }
         grpc::Status st = stream->Finish();
         if (st.ok() && refused)
           return grpc::Status(grpc::StatusCode::INTERNAL, "report refused");
         return st;
       }},
  };
  struct RoleCase {
    std::string name, token;
    std::set<Need> allowed;
  };
  const std::vector<RoleCase> roles = {
      {"admin", kAdmin, {kReadCall, kWriteCall, kWorkerCall}},
      {"submit", kSubmit, {kReadCall, kWriteCall}},
      {"read", kRead, {kReadCall}},
      {"worker", kWorker, {kWorkerCall}},
  };
  const Ids any = fresh();
  for (const auto& [name, need, call] : calls) {
    {
      grpc::ClientContext ctx;
      EXPECT_EQ(call(&ctx, any).error_code(),
                grpc::StatusCode::UNAUTHENTICATED)
          << name << " without token";
    }
    {
      grpc::ClientContext ctx;
      Auth(ctx, "not-a-known-token-at-all");
      EXPECT_EQ(call(&ctx, any).error_code(),
                grpc::StatusCode::UNAUTHENTICATED)
          << name << " bad token";
    }
    for (const RoleCase& role : roles) {
      const bool allowed = role.allowed.count(need) > 0;
      const Ids ids = allowed ? fresh() : any;
      grpc::ClientContext ctx;
      Auth(ctx, role.token);
      grpc::Status st = call(&ctx, ids);
      if (allowed) {
        // Allowed means done, not merely "not denied".
        EXPECT_TRUE(st.ok()) << name << " as " << role.name << ": "
                             << st.error_code() << " " << st.error_message();
      } else {
        EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED)
            << name << " as " << role.name;
      }
    }
  }
}

TEST_F(ApiTest, StringsStayValidUtf8AndBadInputIsNamed) {
  Start(false);
  v1::Sweep sweep;
  ASSERT_TRUE(Submit(Spec("utf8"), &sweep).ok());
  const int64_t w = Register();
  v1::AcquireJobResponse a = Acquire(w);
  ASSERT_TRUE(a.has_job());
  // A long worker error (valid UTF-8, 5,001 bytes of 3-byte characters) is
  // stored cut at a character boundary, so every later read still parses.
  std::string error;
  while (error.size() < 5000) error += "\xE2\x82\xAC";
  {
    grpc::ClientContext ctx;
    v1::FinishJobRequest f;
    *f.mutable_lease() = a.lease();
    f.set_outcome(v1::FAILED);
    f.set_error(error);
    v1::FinishJobResponse r;
    grpc::Status st = workers_->FinishJob(&ctx, f, &r);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  {
    grpc::ClientContext ctx;
    v1::ListJobsRequest r;
    r.set_sweep_id(sweep.id());
    v1::ListJobsResponse jobs;
    grpc::Status st = api_->ListJobs(&ctx, r, &jobs);
    ASSERT_TRUE(st.ok()) << st.error_message();
    ASSERT_EQ(jobs.jobs_size(), 1);
    EXPECT_LE(jobs.jobs(0).error().size(), 4096u);
    EXPECT_EQ(jobs.jobs(0).error().size() % 3, 0u);  // whole characters only
  }
  {
    grpc::ClientContext ctx;
    v1::ListEventsRequest r;
    r.set_sweep_id(sweep.id());
    v1::ListEventsResponse events;
    grpc::Status st = api_->ListEvents(&ctx, r, &events);
    EXPECT_TRUE(st.ok()) << st.error_message();
  }
  // A NUL inside a path is refused, naming the field.
  v1::SweepSpec nul = Spec("nul");
  nul.mutable_data()->set_data_dir(std::string("/data\0x", 7));
  v1::Sweep out;
  grpc::Status st = Submit(nul, &out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("data.data_dir"), std::string::npos)
      << st.error_message();
  // A huge bad value does not turn into a metadata-size error.
  v1::SweepSpec big = Spec("big");
  big.set_device(std::string(20000, 'x'));
  st = Submit(big, &out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << st.error_message().substr(0, 200);
  // A heartbeat may not carry a million leases.
  {
    grpc::ClientContext ctx;
    v1::HeartbeatRequest hb;
    hb.set_worker_id(w);
    for (int i = 0; i < 1000; ++i) *hb.add_leases() = a.lease();
    v1::HeartbeatResponse r;
    st = workers_->Heartbeat(&ctx, hb, &r);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(st.error_message().find("leases"), std::string::npos);
  }
  // QueryMetrics must name a sweep or jobs, as its contract says.
  {
    grpc::ClientContext ctx;
    v1::QueryMetricsRequest q;
    v1::QueryMetricsResponse r;
    st = api_->QueryMetrics(&ctx, q, &r);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(st.error_message().find("filter.sweep_id"), std::string::npos);
  }
}

// Raw bytes as the body of `method`, through gRPC's generic stub.
grpc::Status RawCall(int port, const std::string& method,
                     const std::string& body) {
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                     grpc::InsecureChannelCredentials());
  grpc::GenericStub generic(channel);
  grpc::Slice slice(body);
  grpc::ByteBuffer request(&slice, 1), response;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  std::promise<grpc::Status> done;
  generic.UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response,
                    [&](grpc::Status s) { done.set_value(s); });
  return done.get_future().get();
}

TEST_F(ApiTest, UnparseableRequestsAreInvalidArgumentNamingTheField) {
  Start(false);
  // SubmitSweepRequest{spec: {name: "ab\xFF"}}: not UTF-8.
  const std::string bad_name("\x0a\x05\x0a\x03" "ab\xFF", 7);
  grpc::Status st =
      RawCall(coordinator_->port(), "/mixcal.v1.ExperimentService/SubmitSweep", bad_name);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << st.error_code() << " " << st.error_message();
  EXPECT_NE(st.error_message().find("SweepSpec.name"), std::string::npos)
      << st.error_message();
  // FinishJobRequest{error: "\xC3"} (a cut character), on the worker side.
  st = RawCall(coordinator_->port(), "/mixcal.v1.WorkerService/FinishJob",
               std::string("\x1a\x01\xC3", 3));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("FinishJobRequest.error"),
            std::string::npos)
      << st.error_message();
  // Bytes that are no message at all.
  st = RawCall(coordinator_->port(), "/mixcal.v1.ExperimentService/ListSweeps",
               std::string("\xFF\xFF\xFF\xFF", 4));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("not a valid message"), std::string::npos)
      << st.error_message();
  // The same from a callback method (gRPC answers those UNIMPLEMENTED).
  st = RawCall(coordinator_->port(), "/mixcal.v1.WorkerService/AcquireJob",
               std::string("\xFF\xFF\xFF\xFF", 4));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << st.error_code() << " " << st.error_message();
  // A method that does not exist stays UNIMPLEMENTED.
  st = RawCall(coordinator_->port(), "/mixcal.v1.WorkerService/NoSuchMethod",
               "");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  // Nothing was stored, and a good call still works.
  grpc::ClientContext ctx;
  v1::ListSweepsResponse sweeps;
  ASSERT_TRUE(api_->ListSweeps(&ctx, v1::ListSweepsRequest(), &sweeps).ok());
  EXPECT_EQ(sweeps.sweeps_size(), 0);
}

TEST_F(ApiTest, ASweepRecordsItsSubmittersTokenName) {
  Start(true);
  for (const auto& [token, name] :
       std::vector<std::pair<const char*, std::string>>{{kSubmit, "bob"},
                                                        {kAdmin, "alice"}}) {
    grpc::ClientContext ctx;
    Auth(ctx, token);
    v1::SubmitSweepRequest req;
    *req.mutable_spec() = Spec("who");
    v1::Sweep sweep;
    ASSERT_TRUE(api_->SubmitSweep(&ctx, req, &sweep).ok());
    EXPECT_EQ(sweep.submitter(), name);
  }
}

TEST(CoordinatorLimitsTest, AConnectionThatNeverHandshakesIsClosed) {
  CoordinatorOptions o;
  o.listen = "127.0.0.1:0";
  o.db_path = ":memory:";
  o.handshake_timeout_ms = 300;
  auto c = Coordinator::Start(o);
  ASSERT_TRUE(c.ok()) << c.status();
  // Half an HTTP/2 preface, then nothing.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>((*c)->port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::send(fd, "PRI * HTTP/2.0\r\n", 16, 0), 16);
  timeval tv{5, 0};  // far past the timeout, well inside the test's limit
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[256];
  ssize_t n;
  do {
    n = ::recv(fd, buf, sizeof buf, 0);
  } while (n > 0);  // the server may send its settings first
  EXPECT_EQ(n, 0) << "not closed by the coordinator (errno " << errno << ")";
  ::close(fd);
}

TEST_F(ApiTest, AWorkerCannotActOnAnotherWorkersLease) {
  Start(/*tokens=*/true);
  v1::Sweep sweep;
  ASSERT_TRUE(Submit(Spec("theft"), &sweep, kAdmin).ok());
  const int64_t a_id = Register(kWorker), b_id = Register(kWorker);
  v1::AcquireJobResponse a = Acquire(a_id, kWorker);
  ASSERT_TRUE(a.has_job());
  EXPECT_EQ(a.lease().token().size(), 32u);
  // Worker B knows the job and guesses the attempt, not the token.
  v1::Lease guessed;
  guessed.set_job_id(a.lease().job_id());
  guessed.set_attempt(a.lease().attempt());
  auto call = [&](auto fn) {
    grpc::ClientContext ctx;
    Auth(ctx, kWorker);
    return fn(&ctx);
  };
  grpc::Status st = call([&](grpc::ClientContext* c) {
    v1::ReportEpochRequest r;
    *r.mutable_lease() = guessed;
    *r.add_metrics() = TestMetrics(1);
    v1::ReportEpochResponse resp;
    return workers_->ReportEpoch(c, r, &resp);
  });
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << st.error_message();
  st = call([&](grpc::ClientContext* c) {
    v1::ReportCheckpointRequest r;
    *r.mutable_lease() = guessed;
    r.set_epoch(1);
    r.set_path("job-1/epoch-1.pt");
    v1::ReportCheckpointResponse resp;
    return workers_->ReportCheckpoint(c, r, &resp);
  });
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  st = call([&](grpc::ClientContext* c) {
    v1::FinishJobRequest r;
    *r.mutable_lease() = guessed;
    r.set_outcome(v1::SUCCEEDED);
    v1::FinishJobResponse resp;
    return workers_->FinishJob(c, r, &resp);
  });
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // B's heartbeat with A's whole lease does not keep it: it is not B's.
  {
    grpc::ClientContext ctx;
    Auth(ctx, kWorker);
    v1::HeartbeatRequest hb;
    hb.set_worker_id(b_id);
    *hb.add_leases() = a.lease();
    v1::HeartbeatResponse resp;
    ASSERT_TRUE(workers_->Heartbeat(&ctx, hb, &resp).ok());
    EXPECT_EQ(resp.extended_size(), 0);
    EXPECT_EQ(resp.lost_size(), 1);
  }
  // Nothing B sent was stored; A's lease still works.
  v1::Job job;
  {
    grpc::ClientContext ctx;
    Auth(ctx, kAdmin);
    v1::GetJobRequest g;
    g.set_job_id(a.lease().job_id());
    ASSERT_TRUE(api_->GetJob(&ctx, g, &job).ok());
  }
  EXPECT_EQ(job.state(), v1::RUNNING);
  EXPECT_EQ(job.checkpoint(), "");
  EXPECT_EQ(job.last_epoch(), 0u);
  st = call([&](grpc::ClientContext* c) {
    v1::ReportEpochRequest r;
    *r.mutable_lease() = a.lease();
    *r.add_metrics() = TestMetrics(1);
    v1::ReportEpochResponse resp;
    return workers_->ReportEpoch(c, r, &resp);
  });
  EXPECT_TRUE(st.ok()) << st.error_message();
}

TEST(CoordinatorRestartTest, RunningLeasesSurviveARestartForALease) {
  const fs::path dir = fs::temp_directory_path() /
                       ("mixcal_restart_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  ManualClock clock;
  CoordinatorOptions o;
  o.listen = "127.0.0.1:0";
  o.db_path = (dir / "mixcal.db").string();
  o.lease_ms = 1000;  // the reaper looks every 100 ms
  o.heartbeat_ms = 250;
  o.clock = &clock;
  int64_t job_id = 0;
  {
    auto c = Coordinator::Start(o);
    ASSERT_TRUE(c.ok()) << c.status();
    auto ch = grpc::CreateChannel(
        "127.0.0.1:" + std::to_string((*c)->port()),
        grpc::InsecureChannelCredentials());
    auto api = v1::ExperimentService::NewStub(ch);
    auto workers = v1::WorkerService::NewStub(ch);
    grpc::ClientContext sc;
    v1::SubmitSweepRequest sr;
    *sr.mutable_spec() = Spec("restart");
    v1::Sweep sweep;
    ASSERT_TRUE(api->SubmitSweep(&sc, sr, &sweep).ok());
    grpc::ClientContext rc;
    v1::RegisterWorkerRequest reg;
    reg.set_host("h");
    reg.set_device("cpu");
    v1::RegisterWorkerResponse w;
    ASSERT_TRUE(workers->RegisterWorker(&rc, reg, &w).ok());
    grpc::ClientContext ac;
    v1::AcquireJobRequest ar;
    ar.set_worker_id(w.worker_id());
    ar.set_wait_ms(2000);
    v1::AcquireJobResponse a;
    ASSERT_TRUE(workers->AcquireJob(&ac, ar, &a).ok());
    ASSERT_TRUE(a.has_job());
    job_id = a.job().id();
  }
  // Down for five lease lengths; then up again on the same file.
  clock.AdvanceSeconds(5);
  auto c = Coordinator::Start(o);
  ASSERT_TRUE(c.ok()) << c.status();
  std::this_thread::sleep_for(std::chrono::milliseconds(400));  // reaper passes
  auto api = v1::ExperimentService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string((*c)->port()),
      grpc::InsecureChannelCredentials()));
  grpc::ClientContext gc;
  v1::GetJobRequest g;
  g.set_job_id(job_id);
  v1::Job job;
  ASSERT_TRUE(api->GetJob(&gc, g, &job).ok());
  EXPECT_EQ(job.state(), v1::RUNNING) << "the lease expired at the restart";
  EXPECT_EQ(job.attempt(), 1u);
  c->reset();
  fs::remove_all(dir);
}

TEST_F(ApiTest, InvalidSpecIsRefusedNamingTheFieldAndStoresNothing) {
  Start(false);
  v1::SweepSpec spec = Spec("bad");
  v1::MethodSpec* m = spec.add_methods();
  m->set_name("mixup");
  m->add_values(42);
  v1::Sweep out;
  grpc::Status s = Submit(spec, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("methods[1].values[0]"), std::string::npos)
      << s.error_message();
  EXPECT_NE(s.error_message().find("[0, 10]"), std::string::npos)
      << s.error_message();
  grpc::ClientContext ctx;
  v1::ListSweepsResponse list;
  ASSERT_TRUE(api_->ListSweeps(&ctx, v1::ListSweepsRequest(), &list).ok());
  EXPECT_EQ(list.sweeps_size(), 0);
}

TEST_F(ApiTest, OversizedMessageIsRefused) {
  Start(false);
  v1::SweepSpec spec = Spec("huge");
  spec.mutable_data()->set_data_dir(
      std::string(9 << 20, 'x'));  // over the 8 MiB default
  v1::Sweep out;
  EXPECT_EQ(Submit(spec, &out).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  spec.mutable_data()->set_data_dir(
      std::string(5000, 'x'));  // fits, but over 4096
  grpc::Status s = Submit(spec, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("data.data_dir"), std::string::npos);
}

TEST(CoordinatorTlsTest, ServesTlsWithTokensAndRefusesPlaintext) {
  const fs::path dir =
      fs::temp_directory_path() / ("mixcal_tls_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string cert = (dir / "cert.pem").string(),
                    key = (dir / "key.pem").string();
  const std::string cmd =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
      "-addext "
      "subjectAltName=IP:127.0.0.1,DNS:localhost -keyout " +
      key + " -out " + cert + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0)
      << "openssl is needed (deploy/setup.sh installs it)";
  std::ofstream(dir / "tokens") << kSubmit << " submit\n";
  CoordinatorOptions o;
  o.listen = "127.0.0.1:0";
  o.db_path = (dir / "mixcal.db").string();
  o.tls_cert_file = cert;
  o.tls_key_file = key;
  o.tokens_file = (dir / "tokens").string();
  auto c = Coordinator::Start(o);
  ASSERT_TRUE(c.ok()) << c.status();
  const std::string address = "127.0.0.1:" + std::to_string((*c)->port());
  grpc::SslCredentialsOptions ssl;
  std::ifstream in(cert);
  ssl.pem_root_certs.assign(std::istreambuf_iterator<char>(in), {});
  auto tls_api = v1::ExperimentService::NewStub(
      grpc::CreateChannel(address, grpc::SslCredentials(ssl)));
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", std::string("Bearer ") + kSubmit);
    v1::SubmitSweepRequest req;
    *req.mutable_spec() = Spec("tls");
    v1::Sweep sweep;
    grpc::Status s = tls_api->SubmitSweep(&ctx, req, &sweep);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(sweep.job_ids_size(), 1);
  }
  {
    grpc::ClientContext ctx;  // TLS but no token
    v1::ListSweepsResponse list;
    EXPECT_EQ(
        tls_api->ListSweeps(&ctx, v1::ListSweepsRequest(), &list).error_code(),
        grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    auto plain = v1::ExperimentService::NewStub(
        grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(3));
    ctx.AddMetadata("authorization", std::string("Bearer ") + kSubmit);
    v1::ListSweepsResponse list;
    EXPECT_FALSE(plain->ListSweeps(&ctx, v1::ListSweepsRequest(), &list).ok());
  }
  c->reset();
  fs::remove_all(dir);
}

TEST(CoordinatorStartTest, NonLoopbackNeedsTlsAndTokensOrInsecure) {
  CoordinatorOptions o;
  o.listen = "0.0.0.0:0";
  o.db_path = ":memory:";
  auto c = Coordinator::Start(o);
  ASSERT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("--insecure"), std::string::npos);
  EXPECT_TRUE(IsLoopback("127.0.0.1:7707"));
  EXPECT_TRUE(IsLoopback("localhost:1"));
  EXPECT_TRUE(IsLoopback("[::1]:7707"));
  EXPECT_FALSE(IsLoopback("0.0.0.0:7707"));
  EXPECT_FALSE(IsLoopback("10.1.2.3:7707"));
  EXPECT_TRUE(IsLoopback("127.0.0.2:7707"));
  // Names that only start like a loopback address are not one.
  EXPECT_FALSE(IsLoopback("127.evil.example:7707"));
  EXPECT_FALSE(IsLoopback("127.0.0.1.example:7707"));
  EXPECT_FALSE(IsLoopback("[::1.example]:7707"));
}

TEST_F(ApiTest, StaleLeaseReportIsRefusedOverTheWire) {
  Start(false, /*lease_s=*/0.4);
  v1::Sweep sweep;
  ASSERT_TRUE(Submit(Spec("stale"), &sweep).ok());
  const int64_t w1 = Register(), w2 = Register();
  v1::AcquireJobResponse first = Acquire(w1);
  ASSERT_TRUE(first.has_job());
  // No heartbeats: the reaper requeues it, and w2 gets attempt 2 (the
  // long poll returns as soon as it is requeued).
  v1::AcquireJobResponse second = Acquire(w2);
  ASSERT_TRUE(second.has_job());
  EXPECT_EQ(second.lease().attempt(), 2u);
  grpc::ClientContext ctx;
  v1::ReportEpochRequest req;
  *req.mutable_lease() = first.lease();
  v1::EpochMetrics* m = req.add_metrics();
  m->set_epoch(1);
  m->set_split("test");
  v1::ReportEpochResponse resp;
  grpc::Status s = workers_->ReportEpoch(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
      << s.error_message();
  grpc::ClientContext qctx;
  v1::QueryMetricsResponse rows;
  v1::QueryMetricsRequest all;
  all.mutable_filter()->set_sweep_id(sweep.id());
  ASSERT_TRUE(api_->QueryMetrics(&qctx, all, &rows).ok());
  EXPECT_EQ(rows.rows_size(), 0);
}

TEST_F(ApiTest, ReportStreamAcksEachReportInOrderWithItsOwnStatus) {
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

TEST_F(ApiTest, ThousandsOfReportsOnOneStreamAreAckedOnceEachInOrder) {
  Start(false);
  v1::Sweep sweep;
  ASSERT_TRUE(Submit(Spec("many"), &sweep).ok());
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

TEST_F(ApiTest, KeptPredictionsOnAStreamKeepTheirOrderAndSurviveCancels) {
  Start(false);
  v1::Sweep sweep;
  ASSERT_TRUE(Submit(Spec("kept"), &sweep).ok());
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

TEST_F(ApiTest, ReportStreamsCancelledMidwayLeaveTheCoordinatorServing) {
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

TEST_F(ApiTest, LongPollHandsANewJobToAWaitingWorkerAtOnce) {
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

TEST_F(ApiTest, EmptyLongPollReturnsAfterItsWait) {
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

TEST_F(ApiTest, HealthServiceAnswersServing) {
  Start(false);
  grpc::GenericStub generic(channel_);
  // grpc.health.v1.HealthCheckRequest{service: ""} is the empty message.
  grpc::ByteBuffer request;
  grpc::Slice empty("");
  request = grpc::ByteBuffer(&empty, 1);
  grpc::ByteBuffer response;
  grpc::ClientContext ctx;
  std::promise<grpc::Status> done;
  generic.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(),
                    &request, &response,
                    [&](grpc::Status s) { done.set_value(s); });
  grpc::Status s = done.get_future().get();
  ASSERT_TRUE(s.ok()) << s.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (auto& sl : slices)
    bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));  // status: SERVING
}

}  // namespace
}  // namespace mixcal::server
