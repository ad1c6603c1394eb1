#include "client/dashboard_stream.h"

#include <httplib.h>

#include <chrono>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "client/dashboard_http.h"
#include "client/dashboard_json.h"
#include "client/figures.h"

namespace mixcal::client {
namespace {

// Writes one event; false once the browser has gone.
bool Send(httplib::DataSink& sink, absl::string_view event,
          const std::string& data) {
  const std::string msg =
      absl::StrCat("event: ", event, "\ndata: ", data, "\n\n");
  return sink.write(msg.data(), msg.size());
}

// Streams until the deadline, the end of the watch, or the browser leaving.
void StreamSweep(Session& s, int64_t id, int seconds, httplib::DataSink& sink) {
  const std::string retry = "retry: 2000\n\n";
  sink.write(retry.data(), retry.size());
  grpc::ClientContext ctx;
  s.Prepare(ctx, /*deadline=*/false);
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::seconds(seconds));
  v1::WatchSweepRequest wreq;
  wreq.set_sweep_id(id);
  auto reader = s.api().WatchSweep(&ctx, wreq);
  v1::SweepUpdate u;
  bool open = true;
  while (open && reader->Read(&u)) {
    if (u.has_job()) {
      open = Send(sink, "job", JobJson(u.job()));
    } else if (u.has_metrics()) {
      if (u.metrics().split() == "test")
        open = Send(sink, "metrics", LatestJson(u.metrics()));
    } else if (u.has_sweep()) {
      open = Send(sink, "sweep", SweepJson(u.sweep()));
    }
  }
  if (!open) ctx.TryCancel();
  const absl::Status st = FromGrpc(reader->Finish());
  // The deadline is the stream's planned end, not a failure.
  if (open && !st.ok() && st.code() != absl::StatusCode::kDeadlineExceeded) {
    Send(sink, "failure",
         JsonObject()
             .String("error", FailureMessage(st, s.address()))
             .Int("code", HttpStatus(st.code()))
             .str());
  }
  // The browser reconnects (retry above) and gets a fresh snapshot.
  sink.done();
}

}  // namespace

void ServeSweepEvents(Session& session, int64_t sweep_id, int seconds,
                      httplib::Response& res) {
  Session* s = &session;
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [s, sweep_id, seconds](size_t, httplib::DataSink& sink) {
        StreamSweep(*s, sweep_id, seconds, sink);
        return true;
      });
}

}  // namespace mixcal::client
