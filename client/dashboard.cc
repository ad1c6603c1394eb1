#include "client/dashboard.h"

#include <sys/socket.h>

#include <httplib.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/address.h"
#include "base/file.h"
#include "client/commands.h"
#include "client/dashboard_access.h"
#include "client/dashboard_routes.h"

namespace mixcal::client {

Dashboard::~Dashboard() { Stop(); }

std::string Dashboard::url() const {
  const std::string host = host_.find(':') != std::string::npos
                               ? absl::StrCat("[", host_, "]")
                               : host_;
  return absl::StrCat("http://", host == "0.0.0.0" ? "127.0.0.1" : host, ":",
                      port_, "/");
}

absl::StatusOr<std::unique_ptr<Dashboard>> Dashboard::Start(
    Session& session, const DashboardOptions& options, std::ostream& log) {
  std::unique_ptr<Dashboard> d(new Dashboard());
  const std::string& listen = options.listen;
  const size_t colon = listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--listen must be HOST:PORT with PORT in [0, 65535], got \"", listen,
        "\""));
  }
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  d->host_ = host;
  if (absl::Status st =
          CheckListenAddress(listen, options.token, options.insecure);
      !st.ok())
    return st;
  d->server_ = std::make_unique<httplib::Server>();
  // Live streams hold a thread each while open.
  d->server_->new_task_queue = [] { return new httplib::ThreadPool(64); };
  // A port another process listens on is refused, not shared: httplib's
  // default sets SO_REUSEPORT, and two dashboards would split the
  // connections between them.
  d->server_->set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  if (port == 0) {
    d->port_ = d->server_->bind_to_any_port(host);
  } else if (d->server_->bind_to_port(host, port)) {
    d->port_ = port;
  }
  if (d->port_ <= 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", listen,
                     " (in use, or not an address of this machine)"));
  }
  // The rules and routes need the bound port; nothing is served before
  // listen_after_bind below.
  AccessRules rules;
  rules.check_host = IsLoopback(listen) && host != "0.0.0.0";
  rules.port = d->port_;
  rules.token = options.token;
  InstallAccessRules(*d->server_, std::move(rules));
  RouteOptions routes;
  routes.url = d->url();
  routes.stream_seconds = options.stream_seconds;
  AddDashboardRoutes(*d->server_, session, routes, log);
  Dashboard* self = d.get();
  d->thread_ = std::thread([self] { self->server_->listen_after_bind(); });
  // Serving before returning: cpp-httplib's stop() does nothing until its
  // loop runs, so a dashboard stopped at once would otherwise never stop.
  for (int i = 0; i < 5000 && !d->server_->is_running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return d;
}

void Dashboard::Stop() {
  if (stopped_.exchange(true)) return;
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

void Dashboard::Wait() {
  if (thread_.joinable()) thread_.join();
}

int DashboardCmd(const Parsed& p, Session& s, std::ostream& out,
                 std::ostream& err, bool) {
  DashboardOptions o;
  o.listen = p.Get("listen", "127.0.0.1:8080");
  o.insecure = p.switches.count("dashboard-insecure") > 0;
  if (p.Has("dashboard-token-file")) {
    absl::StatusOr<std::string> t =
        ReadFile(p.Get("dashboard-token-file"), "--dashboard-token-file");
    if (!t.ok()) {
      err << "mixcal: " << t.status().message() << "\n";
      return kUsage;
    }
    o.token = std::string(absl::StripAsciiWhitespace(*t));
    if (o.token.size() < 16) {
      err << "mixcal: --dashboard-token-file holds a token of "
          << o.token.size() << " characters; use at least 16\n";
      return kUsage;
    }
  } else if (const char* t = std::getenv("MIXCAL_DASHBOARD_TOKEN");
             t != nullptr && *t != '\0') {
    o.token = t;
  }
  absl::StatusOr<std::unique_ptr<Dashboard>> d = Dashboard::Start(s, o, err);
  if (!d.ok()) {
    err << "mixcal: " << d.status().message() << "\n";
    return d.status().code() == absl::StatusCode::kInvalidArgument
               ? kUsage
               : kServerError;
  }
  const std::string url = (*d)->url();
  out << "mixcal dashboard on " << url
      << (o.token.empty() ? "" : " (open it once as " + url + "?token=...)")
      << ", reading the coordinator at "
      << p.Get("address", Env("MIXCAL_ADDRESS", "127.0.0.1:7707"))
      << "; Ctrl-C stops it" << std::endl;
  if (p.Has("port-file")) {
    if (absl::Status st = WriteFileAtomically(p.Get("port-file"),
                                              absl::StrCat((*d)->port(), "\n"),
                                              "--port-file");
        !st.ok()) {
      err << "mixcal: " << st.message() << "\n";
      return kUsage;
    }
  }
  if (p.switches.count("open")) {
    const std::string cmd =
        absl::StrCat("xdg-open '", url, "' >/dev/null 2>&1 &");
    if (std::system(cmd.c_str()) != 0)
      err << "mixcal: could not start a browser; open " << url << "\n";
  }
  (*d)->Wait();
  return kOk;
}

}  // namespace mixcal::client
