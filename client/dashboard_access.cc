#include "client/dashboard_access.h"

#include <httplib.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/address.h"

namespace mixcal::client {
namespace {

constexpr char kCookie[] = "mixcal_dashboard";

bool ConstantTimeEqual(absl::string_view a, absl::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i]) ^
            static_cast<unsigned char>(i < b.size() ? b[i] : 0);
  return diff == 0;
}

void SetCommonHeaders(httplib::Response& res) {
  res.set_header("Content-Security-Policy",
                 "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                 "script-src 'self'; connect-src 'self'; frame-ancestors "
                 "'none'");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Referrer-Policy", "no-referrer");
  res.set_header("Cache-Control", "no-store");
}

bool HostAllowed(const httplib::Request& req, int port) {
  const std::string host = req.get_header_value("Host");
  const std::string p = absl::StrCat(":", port);
  return host == absl::StrCat("127.0.0.1", p) ||
         host == absl::StrCat("localhost", p) ||
         host == absl::StrCat("[::1]", p);
}

bool CarriesToken(const httplib::Request& req, const std::string& token) {
  const std::string cookies = req.get_header_value("Cookie");
  for (absl::string_view c : absl::StrSplit(cookies, ';')) {
    c = absl::StripAsciiWhitespace(c);
    if (absl::ConsumePrefix(&c, absl::StrCat(kCookie, "=")) &&
        ConstantTimeEqual(c, token))
      return true;
  }
  const std::string auth = req.get_header_value("Authorization");
  return absl::StartsWith(auth, "Bearer ") &&
         ConstantTimeEqual(auth.substr(7), token);
}

}  // namespace

absl::Status CheckListenAddress(const std::string& listen,
                                const std::string& token, bool insecure) {
  if (!IsLoopback(listen) && token.empty() && !insecure) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--listen ", listen,
        " is reachable from other machines: give the dashboard an access "
        "token (--dashboard-token-file FILE or $MIXCAL_DASHBOARD_TOKEN), or "
        "--dashboard-insecure to serve without one"));
  }
  return absl::OkStatus();
}

void InstallAccessRules(httplib::Server& server, AccessRules rules) {
  server.set_pre_routing_handler([rules = std::move(rules)](
                                     const httplib::Request& req,
                                     httplib::Response& res) {
    using Handler = httplib::Server::HandlerResponse;
    SetCommonHeaders(res);
    // A page elsewhere cannot reach this one through a name it controls.
    if (rules.check_host && !HostAllowed(req, rules.port)) {
      res.status = 421;
      res.set_content("this dashboard answers to 127.0.0.1 or localhost only\n",
                      "text/plain");
      return Handler::Handled;
    }
    if (rules.token.empty()) return Handler::Unhandled;
    if (req.has_param("token") &&
        ConstantTimeEqual(req.get_param_value("token"), rules.token)) {
      res.set_header("Set-Cookie",
                     absl::StrCat(kCookie, "=", rules.token,
                                  "; Path=/; HttpOnly; SameSite=Strict"));
      res.set_redirect(req.path);
      return Handler::Handled;
    }
    if (CarriesToken(req, rules.token)) return Handler::Unhandled;
    res.status = 401;
    res.set_content(
        "This dashboard needs its access token: open it once as "
        "/?token=TOKEN (the token of --dashboard-token-file).\n",
        "text/plain");
    return Handler::Handled;
  });
}

}  // namespace mixcal::client
