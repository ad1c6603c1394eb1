#ifndef MIXCAL_CLIENT_DASHBOARD_ROUTES_H_
#define MIXCAL_CLIENT_DASHBOARD_ROUTES_H_

// The route table of `mixcal dashboard` (client/dashboard.h): what each path
// answers, read through the coordinator's public API.
//
//   /  /sweep/ID  /job/ID  /workers      the page (client/dashboard_assets.cc)
//   /static/app.js  /static/style.css    its script and style
//   /api/health                          {"coordinator","ok","url"}
//   /api/sweeps                          [SweepJson, ...]
//   /api/sweep/ID                        {"sweep","jobs","latest"}
//   /api/sweep/ID/summary?at=&split=&vs= the SummarizeSweep rows as JSON
//   /api/sweep/ID/metrics.csv|.json      every metric row, as a download
//   /api/sweep/ID/events                 the live stream (dashboard_stream.h)
//   /api/job/ID                          {"job","splits","events"}
//   /api/workers                         [WorkerJson, ...]
//   /plot/reliability.svg|curves.svg|sweep.svg   `mixcal plot`'s figures
//
// The shapes are those of client/dashboard_json.h; a failure is
// {"error": ...} with an HTTP status from its code (dashboard_http.h), and an
// unknown path is 404 {"error":"no such page"}.

#include <ostream>
#include <string>

#include "client/session.h"

namespace httplib {
class Server;
}

namespace mixcal::client {

struct RouteOptions {
  // The dashboard's own address, as /api/health reports it.
  std::string url;
  // How long a live stream lasts before the browser reconnects.
  int stream_seconds = 60;
};

// Adds every route above to `server`, its 404 answer, and a line on `log`
// for each answer of 500 or more. `session` and `log` must outlive the
// server (handlers run on its threads). Call before it starts listening.
void AddDashboardRoutes(httplib::Server& server, Session& session,
                        const RouteOptions& options, std::ostream& log);

}  // namespace mixcal::client

#endif  // MIXCAL_CLIENT_DASHBOARD_ROUTES_H_
