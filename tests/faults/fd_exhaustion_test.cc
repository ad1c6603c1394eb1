// Running out of file descriptors: gRPC 1.51 stops accepting connections
// for good after accept() fails with EMFILE. A coordinator started with a
// small open-files limit is flooded with idle TCP connections past it; once
// they close, a new client must be served again (server/listener_watch.h).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

#include "gtest/gtest.h"
#include "server/listener_watch.h"
#include "tests/e2e/harness.h"

namespace mixcal::testing {
namespace {

namespace fs = std::filesystem;

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

TEST(ListenerWatchTest, SeesConnectionsThatNobodyAccepts) {
  // A listening socket that never accepts.
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)),
            0);
  ASSERT_EQ(listen(listener, 16), 0);
  socklen_t len = sizeof(addr);
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  EXPECT_EQ(server::AcceptQueueLength(port), 0);

  std::atomic<int> restarts{0};
  server::ListenerWatch watch(port, [&] { ++restarts; },
                              absl::Milliseconds(50), 3);
  watch.Start();
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_EQ(restarts.load(), 0);  // nothing waits: nothing to do

  std::vector<int> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(Connect(port));
  EXPECT_EQ(server::AcceptQueueLength(port), 3);
  EXPECT_TRUE(WaitFor([&] { return restarts.load() > 0; }, 5));
  watch.Stop();
  for (int fd : clients) close(fd);
  close(listener);
}

TEST(FileDescriptorTest, ACoordinatorThatRanOutOfFilesServesNewClientsAgain) {
  Cluster c("fd_exhaustion");
  const fs::path port_file = c.dir() / "port";
  const std::string log = (c.dir() / "coordinator.log").string();
  // 64 open files: gRPC's own and the store's take about 20.
  Process coordinator({"/usr/bin/prlimit", "--nofile=64:64",
                       MIXCAL_COORDINATOR_BIN, "--listen=127.0.0.1:0",
                       "--db=" + (c.dir() / "mixcal.db").string(),
                       "--port_file=" + port_file.string()},
                      log);
  ASSERT_TRUE(WaitFor([&] { return fs::exists(port_file); }, 20)) << Slurp(log);
  const int port = std::stoi(Slurp(port_file.string()));

  // Idle connections past the limit: accept() fails and gRPC gives up.
  std::vector<int> crowd;
  for (int i = 0; i < 120; ++i) {
    const int fd = Connect(port);
    if (fd >= 0) crowd.push_back(fd);
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        return Slurp(log).find("Too many open files") != std::string::npos;
      },
      10))
      << Slurp(log);
  for (int fd : crowd) close(fd);

  // A new client, retrying its connection for up to 20 s, is served.
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                     grpc::InsecureChannelCredentials());
  auto api = v1::ExperimentService::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_wait_for_ready(true);
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::seconds(20));
  v1::ListSweepsResponse sweeps;
  grpc::Status s = api->ListSweeps(&ctx, v1::ListSweepsRequest(), &sweeps);
  EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message() << "\n"
                      << Slurp(log);
  EXPECT_NE(Slurp(log).find("serving anew on the same port"),
            std::string::npos)
      << Slurp(log);
}

}  // namespace
}  // namespace mixcal::testing
