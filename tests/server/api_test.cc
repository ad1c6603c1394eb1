// Who may call what, over the wire: every role against every RPC (the
// table in docs/security.md), a lease's token, a submitter's name.

#include <functional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "spec/sha256.h"
#include "storage/file_book.h"
#include "tests/server/api_fixture.h"

namespace mixcal::server {
namespace {

// Each RPC with the permission it needs.
enum Need { kReadCall, kWriteCall, kWorkerCall };

// What the auth matrix's calls act on.
struct Ids {
  int64_t sweep = 0, job = 0, cancelled_job = 0, worker = 0, ended_sweep = 0;
  std::string worker_key;
  v1::Lease lease;
  std::string file;  // a stored file's sha256
};

// Uploads `bytes` as one chunk.
grpc::Status UploadOne(v1::ExperimentService::Stub& api, grpc::ClientContext* c,
                       const std::string& bytes) {
  v1::StoredFile stored;
  auto writer = api.UploadFile(c, &stored);
  v1::FileChunk chunk;
  chunk.set_kind("model");
  chunk.set_name("net.pt");
  chunk.set_size(bytes.size());
  chunk.set_sha256(spec::Sha256Hex(bytes));
  chunk.set_data(bytes);
  writer->Write(chunk);
  writer->WritesDone();
  return writer->Finish();
}

TEST_F(ApiTest, AuthMatrixEveryRoleAgainstEveryRpc) {
  Start(/*tokens=*/true);
  // Fresh state for each call that should succeed, the sweep submitted by
  // `owner` (sweeps belong to their submitter): a sweep with a job leased
  // to a worker (epoch 1 stored) and a cancelled job, and a sweep that has
  // ended.
  auto fresh = [&](const std::string& owner) {
    Ids ids;
    v1::SweepSpec spec = Spec("auth");
    spec.add_seeds(0);
    spec.add_seeds(1);
    v1::Sweep sweep;
    EXPECT_TRUE(Submit(spec, &sweep, owner).ok());
    ids.sweep = sweep.id();
    ids.worker = Register(kAdmin, &ids.worker_key);
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
    {
      grpc::ClientContext ctx;
      Auth(ctx, kAdmin);
      EXPECT_TRUE(UploadOne(*api_, &ctx, "auth file").ok());
      ids.file = spec::Sha256Hex("auth file");
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
         // (FAILED: a success needs every epoch stored.)
         r.set_outcome(v1::FAILED);
         v1::FinishJobResponse s;
         return workers_->FinishJob(c, r, &s);
       }},
      {"LeaveRotation", kWorkerCall,
       [&](auto* c, const Ids& ids) {
         v1::LeaveRotationRequest r;
         r.set_worker_id(ids.worker);
         r.set_worker_key(ids.worker_key);
         r.set_reason("stopped");
         v1::LeaveRotationResponse s;
         return workers_->LeaveRotation(c, r, &s);
       }},
      {"UploadFile", kWriteCall,
       [&](auto* c, const Ids&) { return UploadOne(*api_, c, "a model"); }},
      {"ListFiles", kReadCall,
       [&](auto* c, const Ids&) {
         v1::ListFilesRequest r;
         v1::ListFilesResponse s;
         return api_->ListFiles(c, r, &s);
       }},
      {"FetchFile", kWorkerCall,
       [&](auto* c, const Ids& ids) {
         v1::FetchFileRequest r;
         r.set_sha256(ids.file);
         auto reader = workers_->FetchFile(c, r);
         v1::FileChunk chunk;
         while (reader->Read(&chunk)) {
         }
         return reader->Finish();
       }},
      {"StreamReports", kWorkerCall,
       [&](auto* c, const Ids& ids) {
         auto stream = workers_->StreamReports(c);
         v1::WorkerReport r;
         r.set_sequence(1);
         *r.mutable_finish()->mutable_lease() = ids.lease;
         r.mutable_finish()->set_outcome(v1::FAILED);
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
  const Ids any = fresh(kAdmin);
  for (const auto& [name, need, call] : calls) {
    {
      grpc::ClientContext ctx;
      EXPECT_EQ(call(&ctx, any).error_code(), grpc::StatusCode::UNAUTHENTICATED)
          << name << " without token";
    }
    {
      grpc::ClientContext ctx;
      Auth(ctx, "not-a-known-token-at-all");
      EXPECT_EQ(call(&ctx, any).error_code(), grpc::StatusCode::UNAUTHENTICATED)
          << name << " bad token";
    }
    for (const RoleCase& role : roles) {
      const bool allowed = role.allowed.count(need) > 0;
      const bool submits = role.allowed.count(kWriteCall) > 0;
      const Ids ids = allowed ? fresh(submits ? role.token : kAdmin) : any;
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

// Sweeps belong to their submitter: another submitter's cancel or retry is
// PERMISSION_DENIED naming the owner and changes nothing; the owner and an
// admin may; events say who did it.
TEST_F(ApiTest, OnlyItsSubmitterOrAnAdminChangesASweep) {
  Start(true);
  v1::Sweep bobs;
  {
    grpc::ClientContext ctx;
    Auth(ctx, kSubmit);
    v1::SubmitSweepRequest req;
    *req.mutable_spec() = Spec("bobs");
    req.mutable_spec()->add_seeds(0);
    req.mutable_spec()->add_seeds(1);
    ASSERT_TRUE(api_->SubmitSweep(&ctx, req, &bobs).ok());
  }
  auto cancel_sweep = [&](const char* token) {
    grpc::ClientContext ctx;
    Auth(ctx, token);
    v1::CancelSweepRequest r;
    r.set_sweep_id(bobs.id());
    v1::Sweep s;
    return api_->CancelSweep(&ctx, r, &s);
  };
  auto cancel_job = [&](const char* token, int64_t job) {
    grpc::ClientContext ctx;
    Auth(ctx, token);
    v1::CancelJobRequest r;
    r.set_job_id(job);
    v1::Job j;
    return api_->CancelJob(&ctx, r, &j);
  };
  auto retry_job = [&](const char* token, int64_t job) {
    grpc::ClientContext ctx;
    Auth(ctx, token);
    v1::RetryJobRequest r;
    r.set_job_id(job);
    v1::Job j;
    return api_->RetryJob(&ctx, r, &j);
  };
  // Dave, another submitter.
  grpc::Status st = cancel_sweep(kSubmit2);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << st.error_message();
  EXPECT_NE(st.error_message().find("belongs to bob"), std::string::npos)
      << st.error_message();
  st = cancel_job(kSubmit2, bobs.job_ids(0));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  {
    grpc::ClientContext ctx;
    Auth(ctx, kSubmit);
    v1::GetSweepRequest g;
    g.set_sweep_id(bobs.id());
    v1::Sweep now;
    ASSERT_TRUE(api_->GetSweep(&ctx, g, &now).ok());
    EXPECT_NE(now.state(), v1::SWEEP_CANCELLED);
  }
  // Bob cancels one job; dave may not retry it; alice (admin) may.
  ASSERT_TRUE(cancel_job(kSubmit, bobs.job_ids(0)).ok());
  EXPECT_EQ(retry_job(kSubmit2, bobs.job_ids(0)).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(retry_job(kAdmin, bobs.job_ids(0)).ok());
  EXPECT_TRUE(cancel_sweep(kAdmin).ok());
  grpc::ClientContext ctx;
  Auth(ctx, kAdmin);
  v1::ListEventsRequest er;
  er.set_sweep_id(bobs.id());
  v1::ListEventsResponse events;
  ASSERT_TRUE(api_->ListEvents(&ctx, er, &events).ok());
  std::string all;
  for (const v1::Event& e : events.events())
    all += e.kind() + ": " + e.message() + "\n";
  EXPECT_NE(all.find("cancelled: was QUEUED; by bob"), std::string::npos) << all;
  EXPECT_NE(all.find("retried: was CANCELLED; by alice"), std::string::npos)
      << all;
  EXPECT_NE(all.find("jobs cancelled by alice"), std::string::npos) << all;
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

}  // namespace
}  // namespace mixcal::server
