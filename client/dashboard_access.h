#ifndef MIXCAL_CLIENT_DASHBOARD_ACCESS_H_
#define MIXCAL_CLIENT_DASHBOARD_ACCESS_H_

// Who may use `mixcal dashboard` (client/dashboard.h), checked before any
// route runs, and the security headers every answer carries.
//
// On a loopback address a request must name that address in its Host header
// (no DNS rebinding from a web page): 421 otherwise. With a token, a request
// must carry it, compared in constant time, as the cookie this sets, as
// "Authorization: Bearer TOKEN", or once as ?token=TOKEN, which is answered
// with the cookie and a redirect to the same path without it: 401 otherwise.

#include <string>

#include "absl/status/status.h"

namespace httplib {
class Server;
}

namespace mixcal::client {

struct AccessRules {
  // Accept only Host: 127.0.0.1:PORT, localhost:PORT or [::1]:PORT.
  bool check_host = false;
  int port = 0;
  // Empty: no token needed.
  std::string token;
};

// Whether the dashboard may serve on `listen` (HOST:PORT) so:
// InvalidArgument, naming the flags that give a token, for an address
// reachable from other machines without `token` unless `insecure`.
absl::Status CheckListenAddress(const std::string& listen,
                                const std::string& token, bool insecure);

// Installs `rules` as `server`'s pre-routing handler. Call before the server
// starts listening.
void InstallAccessRules(httplib::Server& server, AccessRules rules);

}  // namespace mixcal::client

#endif  // MIXCAL_CLIENT_DASHBOARD_ACCESS_H_
