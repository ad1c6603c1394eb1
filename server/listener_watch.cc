#include "server/listener_watch.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>

namespace mixcal::server {

int AcceptQueueLength(int port) {
  int total = 0;
  bool read_any = false;
  for (const char* file : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(file);
    if (!in) continue;
    read_any = true;
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      // "sl local_address rem_address st tx_queue:rx_queue ..."
      std::istringstream fields(line);
      std::string sl, local, remote, state, queues;
      if (!(fields >> sl >> local >> remote >> state >> queues)) continue;
      if (state != "0A") continue;  // LISTEN
      const size_t colon = local.rfind(':');
      if (colon == std::string::npos) continue;
      if (std::strtol(local.c_str() + colon + 1, nullptr, 16) != port) continue;
      const size_t q = queues.find(':');
      if (q == std::string::npos) continue;
      // For a listening socket rx_queue is its accept queue's length.
      total += static_cast<int>(std::strtol(queues.c_str() + q + 1, nullptr, 16));
    }
  }
  return read_any ? total : -1;
}

bool FileDescriptorsFree(int spare) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return true;
  std::error_code ec;
  long open = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++open;
  }
  // (A small limit asks for a quarter of it spare at most.)
  const long needed =
      std::min<long>(spare, static_cast<long>(limit.rlim_cur) / 4);
  return ec || open + needed < static_cast<long>(limit.rlim_cur);
}

ListenerWatch::ListenerWatch(int port, std::function<void()> restart,
                             absl::Duration period, int checks)
    : port_(port),
      restart_(std::move(restart)),
      checks_(checks),
      thread_(period, [this] { Check(); }) {}

ListenerWatch::~ListenerWatch() { Stop(); }

void ListenerWatch::Start() { thread_.Start(); }

void ListenerWatch::Stop() { thread_.Stop(); }

void ListenerWatch::Check() {
  // A live listener empties its queue within microseconds; one that cannot
  // get descriptors is not dead yet, only starved.
  const bool stuck = AcceptQueueLength(port_) > 0;
  waiting_checks_ = stuck ? waiting_checks_ + 1 : 0;
  if (waiting_checks_ >= checks_ && FileDescriptorsFree(64)) {
    waiting_checks_ = 0;
    restart_();
  }
}

}  // namespace mixcal::server
