// Requests the handlers refuse, naming the field: specs out of range,
// strings that are not UTF-8 or too long, messages gRPC cannot parse or
// that exceed its size limit; nothing is stored.

#include <chrono>
#include <future>
#include <string>

#include "grpcpp/generic/generic_stub.h"
#include "tests/server/api_fixture.h"

namespace mixcal::server {
namespace {

class BadInputTest : public ApiTest {};

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

TEST_F(BadInputTest, StringsStayValidUtf8AndBadInputIsNamed) {
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

TEST_F(BadInputTest, UnparseableRequestsAreInvalidArgumentNamingTheField) {
  Start(false);
  // SubmitSweepRequest{spec: {name: "ab\xFF"}}: not UTF-8.
  const std::string bad_name(
      "\x0a\x05\x0a\x03"
      "ab\xFF",
      7);
  grpc::Status st =
      RawCall(coordinator_->port(), "/mixcal.v1.ExperimentService/SubmitSweep",
              bad_name);
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

TEST_F(BadInputTest, InvalidSpecIsRefusedNamingTheFieldAndStoresNothing) {
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

TEST_F(BadInputTest, OversizedMessageIsRefused) {
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

}  // namespace
}  // namespace mixcal::server
