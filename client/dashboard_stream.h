#ifndef MIXCAL_CLIENT_DASHBOARD_STREAM_H_
#define MIXCAL_CLIENT_DASHBOARD_STREAM_H_

// The live part of `mixcal dashboard`: a sweep's WatchSweep stream as
// Server-Sent Events (GET /api/sweep/ID/events). The stream opens with
// "retry: 2000", then sends
//   event: job       data: JobJson       (client/dashboard_json.h)
//   event: metrics   data: LatestJson    (test rows only)
//   event: sweep     data: SweepJson
//   event: failure   data: {"error": ..., "code": HTTP status}
// and ends after `seconds` (or when the browser goes away); the browser
// reconnects and gets a fresh snapshot. Each open stream holds one of the
// server's threads and one WatchSweep call.

#include <cstdint>

#include "client/session.h"

namespace httplib {
struct Response;
}

namespace mixcal::client {

// Makes `res` the event stream of sweep `sweep_id`. `session` must outlive
// the response (the stream is written after the handler returns).
void ServeSweepEvents(Session& session, int64_t sweep_id, int seconds,
                      httplib::Response& res);

}  // namespace mixcal::client

#endif  // MIXCAL_CLIENT_DASHBOARD_STREAM_H_
