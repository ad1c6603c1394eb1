#ifndef MIXCAL_CLIENT_DASHBOARD_H_
#define MIXCAL_CLIENT_DASHBOARD_H_

// `mixcal dashboard`: a web view of a coordinator, served by a process on
// the client side. Everything it shows it reads through the coordinator's
// public gRPC API with the command's own address, token and TLS options
// (client/session.h), so it adds no way into the coordinator. It serves
// HTTP with cpp-httplib (Debian's libcpp-httplib-dev): pages for the sweeps,
// a sweep (its job table updated live by Server-Sent Events fed from
// WatchSweep), a job and the workers; JSON and CSV under /api/; and the
// figures of `mixcal plot` (client/figures.h) as SVG under /plot/. Every
// asset is served by the process itself (client/dashboard_assets.cc).
//
// Access: on a loopback address requests must name that address in their
// Host header (no DNS rebinding from a web page). On any other address a
// token is required (or an explicit insecure flag): given once as
// ?token=..., it is kept in an HttpOnly cookie; compared in constant time.
//
// This file starts and stops the server; the parts it assembles:
// dashboard_access.h (who may ask), dashboard_routes.h (what each path
// answers), dashboard_stream.h (the live events), dashboard_json.h (the JSON
// they write) and dashboard_http.h (what the handlers share).

#include <atomic>
#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "client/session.h"

namespace httplib {
class Server;
}

namespace mixcal::client {

struct DashboardOptions {
  // HOST:PORT to listen on; port 0 picks a free one.
  std::string listen = "127.0.0.1:8080";
  // Required off loopback unless `insecure`.
  std::string token;
  bool insecure = false;
  // A live stream ends after this long and the browser reconnects (bounds
  // how long a closed tab holds a thread and a WatchSweep).
  int stream_seconds = 60;
};

class Dashboard {
 public:
  // Binds and starts serving on a thread of its own. `session` (connected)
  // and `log` must outlive the Dashboard. InvalidArgument for a bad listen
  // address or a missing token off loopback; Unavailable when the port
  // cannot be bound.
  static absl::StatusOr<std::unique_ptr<Dashboard>> Start(
      Session& session, const DashboardOptions& options, std::ostream& log);
  ~Dashboard();

  int port() const { return port_; }
  // "http://127.0.0.1:8080/".
  std::string url() const;
  // Stops serving and joins the thread; idempotent.
  void Stop();
  // Blocks until Stop() is called (from another thread or a signal path).
  void Wait();

 private:
  Dashboard() = default;

  std::string host_;
  int port_ = 0;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::atomic<bool> stopped_{false};
};

// The command: mixcal dashboard [--listen HOST:PORT] [--open]
// [--dashboard-token-file F] [--dashboard-insecure] [--port-file F].
int DashboardCmd(const Parsed& p, Session& s, std::ostream& out,
                 std::ostream& err, bool tty);

}  // namespace mixcal::client

#endif  // MIXCAL_CLIENT_DASHBOARD_H_
