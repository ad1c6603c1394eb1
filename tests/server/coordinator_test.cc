// The coordinator as a server (server/coordinator.h): TLS, who may listen
// beyond loopback, connections that never handshake, the health service.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <string>
#include <vector>

#include "base/address.h"
#include "grpcpp/generic/generic_stub.h"
#include "tests/scratch_dir.h"
#include "tests/server/api_fixture.h"

namespace mixcal::server {
namespace {

namespace fs = std::filesystem;

class CoordinatorTest : public ApiTest {};

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

TEST(CoordinatorExclusionTest, ASecondCoordinatorOnOneDatabaseIsRefused) {
  const fs::path dir = ::mixcal::testing::FreshTestDir("one_db");
  CoordinatorOptions o;
  o.listen = "127.0.0.1:0";
  o.db_path = (dir / "mixcal.db").string();
  auto first = Coordinator::Start(o);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = Coordinator::Start(o);
  ASSERT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition)
      << second.status();
  EXPECT_NE(second.status().message().find(
                "another mixcal-coordinator serves " + o.db_path),
            std::string::npos)
      << second.status();
  // Once the first is gone, the database is free again.
  first->reset();
  auto third = Coordinator::Start(o);
  EXPECT_TRUE(third.ok()) << third.status();
  third->reset();
  fs::remove_all(dir);
}

TEST(CoordinatorExclusionTest, APortInUseIsRefusedNotShared) {
  CoordinatorOptions o;
  o.listen = "127.0.0.1:0";
  o.db_path = ":memory:";
  auto first = Coordinator::Start(o);
  ASSERT_TRUE(first.ok()) << first.status();
  CoordinatorOptions again = o;
  again.listen = absl::StrCat("127.0.0.1:", (*first)->port());
  auto second = Coordinator::Start(again);
  ASSERT_FALSE(second.ok())
      << "two coordinators share port " << (*first)->port();
  EXPECT_NE(second.status().message().find("cannot listen on"),
            std::string::npos)
      << second.status();
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

TEST_F(CoordinatorTest, HealthServiceAnswersServing) {
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
