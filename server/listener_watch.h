#ifndef MIXCAL_SERVER_LISTENER_WATCH_H_
#define MIXCAL_SERVER_LISTENER_WATCH_H_

// gRPC 1.51 stops accepting connections for good when accept() fails with
// "Too many open files": one crowd of idle connections past the open-files
// limit, even unauthenticated, and no new client is ever served again. This
// watch notices it from the kernel's side: connections that wait in the
// listening socket's accept queue (/proc/net/tcp) for several seconds while
// file descriptors are free again mean nobody accepts them; it then calls
// `restart`, which serves anew on the same port.

#include <functional>

#include "absl/time/time.h"
#include "base/periodic.h"

namespace mixcal::server {

// Connections waiting to be accepted on TCP `port` (IPv4 and IPv6 listening
// sockets together); -1 when /proc/net/tcp cannot be read.
int AcceptQueueLength(int port);

// Whether this process could open `spare` more files now (at most a quarter
// of its limit is asked for).
bool FileDescriptorsFree(int spare);

class ListenerWatch {
 public:
  // Checks every `period`; `restart` runs on the watch's thread after
  // `checks` checks in a row found connections waiting and descriptors free.
  ListenerWatch(int port, std::function<void()> restart,
                absl::Duration period = absl::Seconds(1), int checks = 3);
  ~ListenerWatch();  // Stop()
  void Start();
  void Stop();

 private:
  void Check();

  const int port_;
  std::function<void()> restart_;
  const int checks_;
  int waiting_checks_ = 0;  // the thread's own
  PeriodicThread thread_;
};

}  // namespace mixcal::server

#endif  // MIXCAL_SERVER_LISTENER_WATCH_H_
