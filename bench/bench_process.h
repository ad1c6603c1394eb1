#ifndef MIXCAL_BENCH_BENCH_PROCESS_H_
#define MIXCAL_BENCH_BENCH_PROCESS_H_

// What the load benchmarks share: a program started with its output in a
// log file, a process's /proc figures, and a channel with a connection of
// its own.

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"

namespace mixcal::bench {

// Starts argv[0] with stdout and stderr appended to `log`, one OpenMP
// thread, and `nofile` open files (soft and hard) when > 0.
inline pid_t Spawn(const std::vector<std::string>& argv, const std::string& log,
                   int nofile = 0) {
  pid_t pid = fork();
  if (pid == 0) {
    if (nofile > 0) {
      rlimit fds{static_cast<rlim_t>(nofile), static_cast<rlim_t>(nofile)};
      setrlimit(RLIMIT_NOFILE, &fds);
    }
    FILE* f = std::fopen(log.c_str(), "a");
    dup2(fileno(f), 1);
    dup2(fileno(f), 2);
    std::vector<char*> args;
    for (const std::string& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    setenv("OMP_NUM_THREADS", "1", 1);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

// /proc figures of a process.
struct ProcStat {
  double rss_mb = 0;
  int threads = 0;
  double cpu_s = 0;
  int fds = 0;
};

inline ProcStat Stat(pid_t pid) {
  ProcStat s;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) s.rss_mb = std::atof(line.c_str() + 6) / 1024;
    if (line.rfind("Threads:", 0) == 0) s.threads = std::atoi(line.c_str() + 8);
  }
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(stat)), {});
  const size_t close = all.rfind(')');
  if (close != std::string::npos) {
    std::istringstream rest(all.substr(close + 2));
    std::string field;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14) s.cpu_s += std::atof(field.c_str());
      if (i == 15) s.cpu_s += std::atof(field.c_str());
    }
    s.cpu_s /= static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd",
                                        ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++s.fds;
  return s;
}

// A channel with a connection of its own (not shared with other channels
// to the same address).
inline std::shared_ptr<grpc::Channel> OwnChannel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(),
                                   args);
}

// A coordinator started from `binary` on a database in `dir` (listening on
// a free loopback port) with `flags` added, and its address once it serves
// ("127.0.0.1:PORT"); address empty when it did not start within 20 s (its
// log is dir/coordinator.log).
struct StartedCoordinator {
  pid_t pid = 0;
  std::string address;
};
inline StartedCoordinator StartCoordinator(const std::string& binary,
                                           const std::filesystem::path& dir,
                                           std::vector<std::string> flags,
                                           int nofile = 0) {
  const std::string port_file = (dir / "port").string();
  std::vector<std::string> argv = {binary, "--listen=127.0.0.1:0",
                                   "--db=" + (dir / "mixcal.db").string(),
                                   "--port_file=" + port_file};
  argv.insert(argv.end(), flags.begin(), flags.end());
  StartedCoordinator c;
  c.pid = Spawn(argv, (dir / "coordinator.log").string(), nofile);
  for (int i = 0; i < 200 && !std::filesystem::exists(port_file); ++i)
    usleep(100 * 1000);
  std::string port;
  std::ifstream(port_file) >> port;
  if (!port.empty()) c.address = "127.0.0.1:" + port;
  return c;
}

}  // namespace mixcal::bench

#endif  // MIXCAL_BENCH_BENCH_PROCESS_H_
