// Every unary RPC of both services fed random bytes and structured garbage
// (every number at NaN, infinities and extremes, invalid UTF-8, NUL bytes,
// huge strings and repeated fields) through real gRPC to a coordinator in
// this process. It must stay up and answer, and what it stored must still
// read back (valid UTF-8, an intact file).
//
//   MIXCAL_FUZZ_SECONDS=600 build/tests/fuzz/rpc_fuzz_test   # the long run
// The short run (a few seconds) is part of tests/run.sh.

#include <malloc.h>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <map>
#include <fstream>
#include <limits>
#include <random>
#include <set>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/message.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "mixcal/v1/experiment.grpc.pb.h"
#include "mixcal/v1/worker.grpc.pb.h"
#include "server/coordinator.h"

namespace mixcal::server {
namespace {

namespace fs = std::filesystem;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// Bytes the allocator has handed out and not had back: live memory, as
// against RSS, which also counts freed memory the allocator keeps.
double HeapInUseMb() { return mallinfo2().uordblks / 1048576.0; }

double RssMb() {
  std::ifstream in("/proc/self/statm");
  long pages = 0, resident = 0;
  in >> pages >> resident;
  return resident * (sysconf(_SC_PAGESIZE) / 1048576.0);
}

class Garbage {
 public:
  explicit Garbage(uint64_t seed) : rng_(seed) {}

  std::string Bytes() {
    std::string s(Pick(600), '\0');
    for (char& c : s) c = static_cast<char>(rng_());
    return s;
  }

  // Fills `m`'s fields with hostile values, nested messages to `depth`.
  void Fill(Message* m, int depth) {
    const auto* d = m->GetDescriptor();
    const Reflection* r = m->GetReflection();
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* f = d->field(i);
      if (Pick(3) == 0) continue;  // leave some unset
      if (f->is_repeated()) {
        const int n = Pick(20) == 0 ? 2000 : static_cast<int>(Pick(4));
        for (int k = 0; k < n; ++k) AddOne(m, r, f, depth);
      } else {
        SetOne(m, r, f, depth);
      }
    }
  }

 private:
  size_t Pick(size_t n) { return n == 0 ? 0 : rng_() % n; }

  double Number() {
    static const double kValues[] = {
        0, -0.0, 1, -1, 0.5, 1e308, -1e308, 4.9e-324,
        std::numeric_limits<double>::quiet_NaN(),
        std::numeric_limits<double>::infinity(),
        -std::numeric_limits<double>::infinity(), 2147483647.0,
        -2147483648.0, 9.2e18, 1e6, 15};
    return kValues[Pick(sizeof kValues / sizeof kValues[0])];
  }
  int64_t Integer() {
    static const int64_t kValues[] = {0, 1, -1, 2, 15, 1000, 100000,
                                      INT32_MAX, INT32_MIN, INT64_MAX,
                                      INT64_MIN, 1 << 20};
    return kValues[Pick(sizeof kValues / sizeof kValues[0])];
  }
  std::string Text() {
    switch (Pick(9)) {
      case 0: return "";
      case 1: return "test";
      case 2: return "\xff\xfe\xc3";             // invalid UTF-8
      case 3: return std::string("a\0b", 3);     // NUL inside
      case 4: return std::string(Pick(2) ? 5000 : 200000, 'x');
      case 5: return "../../../etc/passwd";
      case 6: return "mixup";
      case 7: return "synthetic";
      default: {
        std::string s;
        while (s.size() < 4095) s += "\xe2\x82\xac";  // multi-byte, long
        return s;
      }
    }
  }
  void SetOne(Message* m, const Reflection* r, const FieldDescriptor* f,
              int depth) {
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32: r->SetInt32(m, f, static_cast<int32_t>(Integer())); break;
      case FieldDescriptor::CPPTYPE_INT64: r->SetInt64(m, f, Integer()); break;
      case FieldDescriptor::CPPTYPE_UINT32: r->SetUInt32(m, f, static_cast<uint32_t>(Integer())); break;
      case FieldDescriptor::CPPTYPE_UINT64: r->SetUInt64(m, f, static_cast<uint64_t>(Integer())); break;
      case FieldDescriptor::CPPTYPE_DOUBLE: r->SetDouble(m, f, Number()); break;
      case FieldDescriptor::CPPTYPE_FLOAT: r->SetFloat(m, f, static_cast<float>(Number())); break;
      case FieldDescriptor::CPPTYPE_BOOL: r->SetBool(m, f, Pick(2)); break;
      case FieldDescriptor::CPPTYPE_ENUM: r->SetEnumValue(m, f, static_cast<int>(Integer() % 8)); break;
      case FieldDescriptor::CPPTYPE_STRING: r->SetString(m, f, Text()); break;
      case FieldDescriptor::CPPTYPE_MESSAGE:
        if (depth > 0) Fill(r->MutableMessage(m, f), depth - 1);
        break;
    }
  }
  void AddOne(Message* m, const Reflection* r, const FieldDescriptor* f,
              int depth) {
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32: r->AddInt32(m, f, static_cast<int32_t>(Integer())); break;
      case FieldDescriptor::CPPTYPE_INT64: r->AddInt64(m, f, Integer()); break;
      case FieldDescriptor::CPPTYPE_UINT32: r->AddUInt32(m, f, static_cast<uint32_t>(Integer())); break;
      case FieldDescriptor::CPPTYPE_UINT64: r->AddUInt64(m, f, static_cast<uint64_t>(Integer())); break;
      case FieldDescriptor::CPPTYPE_DOUBLE: r->AddDouble(m, f, Number()); break;
      case FieldDescriptor::CPPTYPE_FLOAT: r->AddFloat(m, f, static_cast<float>(Number())); break;
      case FieldDescriptor::CPPTYPE_BOOL: r->AddBool(m, f, Pick(2)); break;
      case FieldDescriptor::CPPTYPE_ENUM: r->AddEnumValue(m, f, static_cast<int>(Integer() % 8)); break;
      case FieldDescriptor::CPPTYPE_STRING: r->AddString(m, f, Text()); break;
      case FieldDescriptor::CPPTYPE_MESSAGE:
        if (depth > 0) Fill(r->AddMessage(m, f), depth - 1);
        break;
    }
  }

  std::mt19937_64 rng_;
};

TEST(RpcFuzzTest, EveryUnaryRpcSurvivesGarbageAndTheStoreStaysReadable) {
  const char* env = std::getenv("MIXCAL_FUZZ_SECONDS");
  const double seconds = env != nullptr ? std::atof(env) : 4.0;
  const fs::path dir = fs::temp_directory_path() /
                       ("mixcal_fuzz_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  CoordinatorOptions o;
  o.listen = "127.0.0.1:0";
  o.db_path = (dir / "mixcal.db").string();
  auto c = Coordinator::Start(o);
  ASSERT_TRUE(c.ok()) << c.status();
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(64 << 20);
  auto channel = grpc::CreateCustomChannel(
      "127.0.0.1:" + std::to_string((*c)->port()),
      grpc::InsecureChannelCredentials(), args);
  auto api = v1::ExperimentService::NewStub(channel);
  auto workers = v1::WorkerService::NewStub(channel);
  {
    // Something to aim at: a sweep with a job leased to a worker.
    grpc::ClientContext sc;
    v1::SubmitSweepRequest sr;
    sr.mutable_spec()->set_name("target");
    sr.mutable_spec()->mutable_data()->set_dataset("synthetic");
    sr.mutable_spec()->add_methods()->set_name("baseline");
    v1::Sweep sweep;
    ASSERT_TRUE(api->SubmitSweep(&sc, sr, &sweep).ok());
    grpc::ClientContext rc;
    v1::RegisterWorkerRequest reg;
    reg.set_host("fuzz");
    reg.set_device("cpu");
    v1::RegisterWorkerResponse w;
    ASSERT_TRUE(workers->RegisterWorker(&rc, reg, &w).ok());
    grpc::ClientContext ac;
    v1::AcquireJobRequest ar;
    ar.set_worker_id(w.worker_id());
    ar.set_wait_ms(1000);
    v1::AcquireJobResponse a;
    ASSERT_TRUE(workers->AcquireJob(&ac, ar, &a).ok());
  }

  std::vector<const google::protobuf::MethodDescriptor*> methods;
  for (const char* name :
       {"mixcal.v1.ExperimentService", "mixcal.v1.WorkerService"}) {
    const auto* svc =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
            name);
    ASSERT_NE(svc, nullptr) << name;
    for (int i = 0; i < svc->method_count(); ++i) {
      const auto* m = svc->method(i);
      if (!m->client_streaming() && !m->server_streaming()) methods.push_back(m);
    }
  }
  ASSERT_EQ(methods.size(), 22u);  // 15 + 7; the four streams are apart

  grpc::GenericStub generic(channel);
  google::protobuf::DynamicMessageFactory factory;
  Garbage garbage(20261202);
  const double rss_before = RssMb();
  const double heap_before = HeapInUseMb();
  const auto start = std::chrono::steady_clock::now();
  int64_t inputs = 0;
  std::map<grpc::StatusCode, int64_t> codes;
  std::set<std::string> internal;
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                       start)
             .count() < seconds) {
    for (const auto* m : methods) {
      std::string body;
      if (inputs % 3 == 0) {
        body = garbage.Bytes();
      } else {
        std::unique_ptr<Message> msg(
            factory.GetPrototype(m->input_type())->New());
        garbage.Fill(msg.get(), 3);
        msg->SerializePartialToString(&body);
      }
      grpc::Slice slice(body);
      grpc::ByteBuffer request(&slice, 1), response;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(5));
      const std::string path = "/" + m->service()->full_name() + "/" + m->name();
      std::promise<grpc::Status> done;
      generic.UnaryCall(&ctx, path, grpc::StubOptions(), &request, &response,
                        [&](grpc::Status s) { done.set_value(s); });
      grpc::Status st = done.get_future().get();
      ++codes[st.error_code()];
      ++inputs;
      // A refusal names what was wrong; never INTERNAL, not even for a
      // body that is no message at all (server/parse_errors.h).
      if (st.error_code() == grpc::StatusCode::INTERNAL ||
          st.error_code() == grpc::StatusCode::UNKNOWN ||
          st.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
        internal.insert(m->name() + ": " + st.error_message().substr(0, 120));
      }
    }
  }
  const double rss_after = RssMb();
  const double heap_after = HeapInUseMb();
  malloc_trim(0);
  const double rss_trimmed = RssMb();
  std::printf("fuzz: %lld inputs over %zu RPCs in %.0f s; process RSS %.1f -> "
              "%.1f MB (%.1f MB once the allocator returns what is free); "
              "heap in use %.1f -> %.1f MB; status codes:",
              static_cast<long long>(inputs), methods.size(), seconds,
              rss_before, rss_after, rss_trimmed, heap_before, heap_after);
  for (const auto& [code, n] : codes)
    std::printf(" %d:%lld", static_cast<int>(code), static_cast<long long>(n));
  std::printf("\n");
  for (const std::string& e : internal) std::printf("  %s\n", e.c_str());
  EXPECT_TRUE(internal.empty()) << "INTERNAL or UNKNOWN answers, above";

  // Still up, and everything stored reads back (valid UTF-8 throughout,
  // or the client could not parse the replies).
  grpc::ClientContext lc;
  v1::ListSweepsRequest lr;
  lr.set_limit(1000);
  v1::ListSweepsResponse sweeps;
  grpc::Status st = api->ListSweeps(&lc, lr, &sweeps);
  ASSERT_TRUE(st.ok()) << st.error_message();
  for (const v1::Sweep& s : sweeps.sweeps()) {
    grpc::ClientContext jc;
    v1::ListJobsRequest jr;
    jr.set_sweep_id(s.id());
    v1::ListJobsResponse jobs;
    st = api->ListJobs(&jc, jr, &jobs);
    EXPECT_TRUE(st.ok()) << "sweep " << s.id() << ": " << st.error_message();
    grpc::ClientContext ec;
    v1::ListEventsRequest er;
    er.set_sweep_id(s.id());
    v1::ListEventsResponse events;
    st = api->ListEvents(&ec, er, &events);
    EXPECT_TRUE(st.ok()) << "sweep " << s.id() << ": " << st.error_message();
  }
  grpc::ClientContext wc;
  v1::ListWorkersResponse ws;
  st = api->ListWorkers(&wc, v1::ListWorkersRequest(), &ws);
  EXPECT_TRUE(st.ok()) << st.error_message();
  c->reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(o.db_path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, nullptr);
  ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(q, 0)), "ok");
  sqlite3_finalize(q);
  sqlite3_close(db);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mixcal::server
