#include "client/dashboard.h"

#include <httplib.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/address.h"
#include "base/file.h"
#include "calib/config.h"
#include "calib/metric_table.h"
#include "client/commands.h"
#include "client/figures.h"
#include "client/output.h"

namespace mixcal::client {

// The page shells, script and style (client/dashboard_assets.cc).
extern const char kDashboardPage[];
extern const char kDashboardScript[];
extern const char kDashboardStyle[];

namespace {

constexpr char kCookie[] = "mixcal_dashboard";

// Content types with a parameter: cpp-httplib compresses only the bare
// types, with Brotli at its slowest setting, which took 0.5 s for a
// 1,000-job table (a local dashboard gains nothing from it). Downloads are
// attachments: octet-stream keeps a CSV of millions of rows uncompressed.
constexpr char kJson[] = "application/json; charset=utf-8";

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == '<' || c == '>' || c == '&') {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string JsonNumber(double v) {
  if (!std::isfinite(v)) return "null";
  return absl::StrFormat("%.9g", v);
}

bool ConstantTimeEqual(absl::string_view a, absl::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i]) ^
            static_cast<unsigned char>(i < b.size() ? b[i] : 0);
  return diff == 0;
}

uint32_t EpochsPerJob(const v1::SweepSpec& spec) {
  return spec.training().epochs() > 0 ? spec.training().epochs() : 10;
}

std::string CountsJson(const v1::Sweep& s) {
  const v1::JobCounts& c = s.counts();
  return absl::StrCat("{\"queued\":", c.queued(), ",\"running\":", c.running(),
                      ",\"succeeded\":", c.succeeded(), ",\"failed\":",
                      c.failed(), ",\"cancelled\":", c.cancelled(),
                      ",\"epochs_done\":", c.epochs_done(), "}");
}

std::string SweepJson(const v1::Sweep& s) {
  return absl::StrCat(
      "{\"id\":", s.id(), ",\"name\":", JsonString(s.name()),
      ",\"state\":", JsonString(SweepStateName(s.state())),
      ",\"created_at_us\":", s.created_at_us(), ",\"jobs\":", s.job_ids_size(),
      ",\"epochs_per_job\":", EpochsPerJob(s.spec()),
      ",\"dataset\":", JsonString(s.spec().data().dataset()),
      ",\"model\":", JsonString(s.spec().model()),
      ",\"submitter\":", JsonString(s.submitter()),
      ",\"counts\":", CountsJson(s), "}");
}

std::string JobJson(const v1::Job& j) {
  const uint32_t epochs = j.config().training().epochs() > 0
                              ? j.config().training().epochs()
                              : 10;
  return absl::StrCat(
      "{\"id\":", j.id(), ",\"sweep_id\":", j.sweep_id(),
      ",\"method\":", JsonString(j.method()), ",\"value\":",
      JsonNumber(j.value()), ",\"label\":",
      JsonString(MethodLabel(j.method(), j.value())), ",\"seed\":", j.seed(),
      ",\"state\":", JsonString(StateName(j.state())),
      ",\"epoch\":", j.last_epoch(), ",\"epochs\":", epochs,
      ",\"attempt\":", j.attempt(), ",\"max_attempts\":", j.max_attempts(),
      ",\"worker\":", j.worker_id(), ",\"error\":", JsonString(j.error()),
      ",\"started_at_us\":", j.started_at_us(),
      ",\"finished_at_us\":", j.finished_at_us(), "}");
}

// The few numbers a job table shows of one epoch's test row.
std::string LatestJson(const v1::EpochMetrics& m) {
  return absl::StrCat("{\"job_id\":", m.job_id(), ",\"epoch\":", m.epoch(),
                      ",\"accuracy\":", JsonNumber(m.accuracy()),
                      ",\"ece\":", JsonNumber(m.ece()), ",\"oe\":",
                      JsonNumber(m.oe()), ",\"samples_per_sec\":",
                      JsonNumber(m.samples_per_sec()), "}");
}

int HttpStatus(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kFailedPrecondition:
      return 409;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return 502;
    default:
      return 500;
  }
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

// The id a route's pattern matched as (\d+); 0 when out of range (the
// coordinator refuses it, naming the field).
int64_t PathId(const httplib::Request& req) {
  int64_t id = 0;
  if (!absl::SimpleAtoi(req.matches[1].str(), &id)) return 0;
  return id;
}

// An integer query parameter in [min, max].
bool IntParam(const httplib::Request& req, const std::string& name,
              int64_t min, int64_t max, int64_t* out, std::string* error) {
  const std::string v = req.get_param_value(name.c_str());
  if (!absl::SimpleAtoi(v, out) || *out < min || *out > max) {
    *error = absl::StrCat(name, " must be a number in [", min, ", ", max,
                          "], got \"", v.substr(0, 40), "\"");
    return false;
  }
  return true;
}

}  // namespace

Dashboard::Dashboard(Session& session, const DashboardOptions& options,
                     std::ostream& log)
    : session_(session), options_(options), log_(log) {}

Dashboard::~Dashboard() { Stop(); }

std::string Dashboard::url() const {
  const std::string host =
      host_.find(':') != std::string::npos ? absl::StrCat("[", host_, "]")
                                           : host_;
  return absl::StrCat("http://", host == "0.0.0.0" ? "127.0.0.1" : host, ":",
                      port_, "/");
}

absl::StatusOr<std::unique_ptr<Dashboard>> Dashboard::Start(
    Session& session, const DashboardOptions& options, std::ostream& log) {
  std::unique_ptr<Dashboard> d(new Dashboard(session, options, log));
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
  if (!IsLoopback(listen) && options.token.empty() && !options.insecure) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--listen ", listen,
        " is reachable from other machines: give the dashboard an access "
        "token (--dashboard-token-file FILE or $MIXCAL_DASHBOARD_TOKEN), or "
        "--dashboard-insecure to serve without one"));
  }
  d->server_ = std::make_unique<httplib::Server>();
  // Live streams hold a thread each while open.
  d->server_->new_task_queue = [] { return new httplib::ThreadPool(64); };
  d->Routes();
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
  Dashboard* self = d.get();
  d->thread_ = std::thread([self] { self->server_->listen_after_bind(); });
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

void Dashboard::Routes() {
  httplib::Server& svr = *server_;
  // Handlers and stream providers run after Routes() returns: they hold the
  // session by pointer.
  Session* sp = &session_;

  // --- access ---
  const bool loopback = IsLoopback(options_.listen);
  svr.set_pre_routing_handler([this, loopback](const httplib::Request& req,
                                               httplib::Response& res) {
    SetCommonHeaders(res);
    if (loopback && host_ != "0.0.0.0") {
      // A page elsewhere cannot reach this one through a name it controls.
      const std::string host = req.get_header_value("Host");
      const std::string p = absl::StrCat(":", port_);
      if (host != absl::StrCat("127.0.0.1", p) &&
          host != absl::StrCat("localhost", p) &&
          host != absl::StrCat("[::1]", p)) {
        res.status = 421;
        res.set_content("this dashboard answers to 127.0.0.1 or localhost only\n",
                        "text/plain");
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    if (options_.token.empty()) return httplib::Server::HandlerResponse::Unhandled;
    if (req.has_param("token") &&
        ConstantTimeEqual(req.get_param_value("token"), options_.token)) {
      res.set_header("Set-Cookie",
                     absl::StrCat(kCookie, "=", options_.token,
                                  "; Path=/; HttpOnly; SameSite=Strict"));
      res.set_redirect(req.path);
      return httplib::Server::HandlerResponse::Handled;
    }
    const std::string cookies = req.get_header_value("Cookie");
    for (absl::string_view c : absl::StrSplit(cookies, ';')) {
      c = absl::StripAsciiWhitespace(c);
      if (absl::ConsumePrefix(&c, absl::StrCat(kCookie, "=")) &&
          ConstantTimeEqual(c, options_.token))
        return httplib::Server::HandlerResponse::Unhandled;
    }
    const std::string auth = req.get_header_value("Authorization");
    if (absl::StartsWith(auth, "Bearer ") &&
        ConstantTimeEqual(auth.substr(7), options_.token))
      return httplib::Server::HandlerResponse::Unhandled;
    res.status = 401;
    res.set_content(
        "This dashboard needs its access token: open it once as "
        "/?token=TOKEN (the token of --dashboard-token-file).\n",
        "text/plain");
    return httplib::Server::HandlerResponse::Handled;
  });

  // Failures as JSON {"error": ...} with an HTTP status from the code.
  auto fail = [sp](httplib::Response& res, const absl::Status& st) {
    std::string msg(st.message());
    if (st.code() == absl::StatusCode::kUnavailable ||
        st.code() == absl::StatusCode::kDeadlineExceeded) {
      msg = absl::StrCat("cannot reach the coordinator at ", sp->address(),
                         " (", msg, ")");
    }
    res.status = HttpStatus(st.code());
    res.set_content(absl::StrCat("{\"error\":", JsonString(msg), "}\n"),
                    kJson);
  };
  auto bad = [](httplib::Response& res, const std::string& msg) {
    res.status = 400;
    res.set_content(absl::StrCat("{\"error\":", JsonString(msg), "}\n"),
                    kJson);
  };
  auto json = [](httplib::Response& res, const std::string& body) {
    res.set_content(body, kJson);
  };

  // --- pages and assets ---
  auto page = [](httplib::Response& res) {
    res.set_content(kDashboardPage, "text/html; charset=utf-8");
  };
  svr.Get("/", [page](const httplib::Request&, httplib::Response& res) { page(res); });
  // A sweep's page names its two first requests in the head, so the
  // browser fetches them while it loads the script.
  svr.Get(R"(/sweep/(\d+))", [](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1].str();
    std::string html = kDashboardPage;
    const std::string marker = "<!--PRELOAD-->";
    html.replace(html.find(marker), marker.size(),
                 absl::StrCat("<link rel=\"preload\" as=\"fetch\" crossorigin "
                              "href=\"/api/sweep/", id,
                              "\">\n<link rel=\"preload\" as=\"fetch\" crossorigin "
                              "href=\"/api/sweep/", id,
                              "/summary?at=final&amp;split=test&amp;vs=baseline\">"));
    res.set_content(html, "text/html; charset=utf-8");
  });
  svr.Get(R"(/job/\d+)", [page](const httplib::Request&, httplib::Response& res) { page(res); });
  svr.Get("/workers", [page](const httplib::Request&, httplib::Response& res) { page(res); });
  svr.Get("/static/app.js", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kDashboardScript, "application/javascript; charset=utf-8");
  });
  svr.Get("/static/style.css", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kDashboardStyle, "text/css; charset=utf-8");
  });

  // --- JSON ---
  svr.Get("/api/health", [sp, json, this](const httplib::Request&,
                                          httplib::Response& res) {
    Session& s = *sp;
    v1::ListWorkersRequest req;
    v1::ListWorkersResponse resp;
    grpc::Status st = s.Call(&v1::ExperimentService::Stub::ListWorkers, req, &resp);
    json(res, absl::StrCat("{\"coordinator\":",
                           JsonString(st.ok() ? "ok" : st.error_message()),
                           ",\"ok\":", st.ok() ? "true" : "false",
                           ",\"url\":", JsonString(url()), "}"));
  });
  svr.Get("/api/sweeps", [sp, json, fail](const httplib::Request&,
                                         httplib::Response& res) {
    Session& s = *sp;
    v1::ListSweepsRequest req;
    req.set_limit(1000);
    v1::ListSweepsResponse resp;
    grpc::Status st = s.Call(&v1::ExperimentService::Stub::ListSweeps, req, &resp);
    if (!st.ok()) return fail(res, FromGrpc(st));
    std::string out = "[";
    for (const v1::Sweep& sw : resp.sweeps())
      absl::StrAppend(&out, out.size() > 1 ? ",\n" : "", SweepJson(sw));
    json(res, out + "]\n");
  });
  svr.Get(R"(/api/sweep/(\d+))", [sp, json, fail](const httplib::Request& req,
                                                 httplib::Response& res) {
    Session& s = *sp;
    const int64_t id = PathId(req);
    v1::GetSweepRequest sreq;
    sreq.set_sweep_id(id);
    v1::Sweep sweep;
    grpc::Status st = s.Call(&v1::ExperimentService::Stub::GetSweep, sreq, &sweep);
    if (!st.ok()) return fail(res, FromGrpc(st));
    v1::ListJobsRequest jreq;
    jreq.set_sweep_id(id);
    jreq.set_limit(10000);
    v1::ListJobsResponse jobs;
    st = s.Call(&v1::ExperimentService::Stub::ListJobs, jreq, &jobs);
    if (!st.ok()) return fail(res, FromGrpc(st));
    // Each job's newest test row: what the table shows before live updates.
    v1::QueryMetricsRequest mreq;
    mreq.mutable_filter()->set_sweep_id(id);
    mreq.mutable_filter()->set_split("test");
    mreq.mutable_filter()->set_latest_only(true);
    mreq.mutable_filter()->set_page_size(10000);
    std::string latest = "[";
    st = s.ForEachMetricsPage(mreq, [&](const v1::QueryMetricsResponse& r) {
      for (const auto& m : r.rows())
        absl::StrAppend(&latest, latest.size() > 1 ? "," : "", LatestJson(m));
    });
    if (!st.ok()) return fail(res, FromGrpc(st));
    std::string out = absl::StrCat("{\"sweep\":", SweepJson(sweep), ",\"jobs\":[");
    bool first = true;
    for (const v1::Job& j : jobs.jobs()) {
      absl::StrAppend(&out, first ? "" : ",\n", JobJson(j));
      first = false;
    }
    json(res, absl::StrCat(out, "],\"latest\":", latest, "]}\n"));
  });
  svr.Get(R"(/api/sweep/(\d+)/summary)", [sp, json, fail, bad](
                                             const httplib::Request& req,
                                             httplib::Response& res) {
    Session& s = *sp;
    const int64_t id = PathId(req);
    v1::SummarizeSweepRequest sreq;
    sreq.set_sweep_id(id);
    const std::string at = req.has_param("at") ? req.get_param_value("at") : "final";
    if (at == "final") {
      sreq.mutable_at()->set_final(true);
    } else if (absl::StartsWith(at, "best:")) {
      sreq.mutable_at()->set_best_by(at.substr(5));
    } else if (uint32_t e; absl::StartsWith(at, "epoch:") &&
                           absl::SimpleAtoi(at.substr(6), &e) && e > 0) {
      sreq.mutable_at()->set_epoch(e);
    } else {
      return bad(res, absl::StrCat("at must be final, best:METRIC or epoch:N, got \"",
                                   at.substr(0, 40), "\""));
    }
    sreq.set_split(req.has_param("split") ? req.get_param_value("split") : "test");
    sreq.set_vs(req.get_param_value("vs"));
    v1::SummarizeSweepResponse resp;
    grpc::Status st =
        s.Call(&v1::ExperimentService::Stub::SummarizeSweep, sreq, &resp);
    if (!st.ok()) return fail(res, FromGrpc(st));
    json(res, JsonArray(resp.rows()) + "\n");
  });
  svr.Get(R"(/api/sweep/(\d+)/metrics\.(csv|json))", [sp, fail](
                                                        const httplib::Request& req,
                                                        httplib::Response& res) {
    Session& s = *sp;
    const int64_t id = PathId(req);
    const std::string format = req.matches[2].str();
    v1::QueryMetricsRequest mreq;
    mreq.mutable_filter()->set_sweep_id(id);
    mreq.mutable_filter()->set_page_size(10000);
    std::ostringstream out;
    grpc::Status st = WriteMetrics(s, mreq, format, out);
    if (!st.ok()) return fail(res, FromGrpc(st));
    res.set_header("Content-Disposition",
                   absl::StrCat("attachment; filename=\"sweep", id,
                                "-metrics.", format, "\""));
    res.set_content(out.str(), format == "csv" ? "application/octet-stream"
                                               : kJson);
  });
  svr.Get(R"(/api/job/(\d+))", [sp, json, fail](const httplib::Request& req,
                                               httplib::Response& res) {
    Session& s = *sp;
    const int64_t id = PathId(req);
    v1::GetJobRequest jreq;
    jreq.set_job_id(id);
    v1::Job job;
    grpc::Status st = s.Call(&v1::ExperimentService::Stub::GetJob, jreq, &job);
    if (!st.ok()) return fail(res, FromGrpc(st));
    // The splits this job has, from its newest epoch.
    v1::QueryMetricsRequest mreq;
    mreq.mutable_filter()->add_job_ids(id);
    mreq.mutable_filter()->set_latest_only(true);
    std::string splits = "[";
    st = s.ForEachMetricsPage(mreq, [&](const v1::QueryMetricsResponse& r) {
      for (const auto& m : r.rows())
        absl::StrAppend(&splits, splits.size() > 1 ? "," : "",
                        JsonString(m.split()));
    });
    if (!st.ok()) return fail(res, FromGrpc(st));
    v1::ListEventsRequest ereq;
    ereq.set_job_id(id);
    ereq.set_limit(1000);
    v1::ListEventsResponse events;
    st = s.Call(&v1::ExperimentService::Stub::ListEvents, ereq, &events);
    if (!st.ok()) return fail(res, FromGrpc(st));
    std::string ev = "[";
    for (const v1::Event& e : events.events())
      absl::StrAppend(&ev, ev.size() > 1 ? ",\n" : "", "{\"time_us\":",
                      e.time_us(), ",\"kind\":", JsonString(e.kind()),
                      ",\"message\":", JsonString(e.message()), "}");
    json(res, absl::StrCat("{\"job\":", JobJson(job), ",\"splits\":", splits,
                           "],\"events\":", ev, "]}\n"));
  });
  svr.Get("/api/workers", [sp, json, fail](const httplib::Request&,
                                          httplib::Response& res) {
    Session& s = *sp;
    v1::ListWorkersRequest req;
    v1::ListWorkersResponse resp;
    grpc::Status st = s.Call(&v1::ExperimentService::Stub::ListWorkers, req, &resp);
    if (!st.ok()) return fail(res, FromGrpc(st));
    const int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    std::string out = "[";
    for (const v1::WorkerInfo& w : resp.workers()) {
      std::string state = v1::WorkerState_Name(w.state());
      for (char& c : state) c = static_cast<char>(std::tolower(c));
      absl::StrAppend(
          &out, out.size() > 1 ? ",\n" : "", "{\"id\":", w.id(),
          ",\"name\":", JsonString(w.name()), ",\"host\":", JsonString(w.host()),
          ",\"device\":", JsonString(w.device()), ",\"device_name\":",
          JsonString(w.device_name()), ",\"state\":", JsonString(state),
          ",\"reason\":", JsonString(w.state_reason()),
          ",\"placement\":", JsonString(w.placement()),
          ",\"current_job\":", w.current_job_id(), ",\"heartbeat_ago_s\":",
          JsonNumber(w.last_heartbeat_us() > 0
                         ? (now - w.last_heartbeat_us()) / 1e6
                         : NAN),
          "}");
    }
    json(res, out + "]\n");
  });

  // --- live: WatchSweep as Server-Sent Events ---
  svr.Get(R"(/api/sweep/(\d+)/events)", [this, sp](const httplib::Request& req,
                                                  httplib::Response& res) {
    const int64_t id = PathId(req);
    const int seconds = options_.stream_seconds;
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider(
        "text/event-stream",
        [sp, id, seconds](size_t, httplib::DataSink& sink) {
    Session& s = *sp;
          auto send = [&sink](absl::string_view event, const std::string& data) {
            const std::string msg =
                absl::StrCat("event: ", event, "\ndata: ", data, "\n\n");
            return sink.write(msg.data(), msg.size());
          };
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
              open = send("job", JobJson(u.job()));
            } else if (u.has_metrics()) {
              if (u.metrics().split() == "test")
                open = send("metrics", LatestJson(u.metrics()));
            } else if (u.has_sweep()) {
              open = send("sweep", SweepJson(u.sweep()));
            }
          }
          if (!open) ctx.TryCancel();
          grpc::Status st = reader->Finish();
          if (open && !st.ok() &&
              st.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
            std::string msg = st.error_message();
            if (st.error_code() == grpc::StatusCode::UNAVAILABLE)
              msg = absl::StrCat("cannot reach the coordinator at ",
                                 s.address(), " (", msg, ")");
            send("failure", absl::StrCat("{\"error\":", JsonString(msg),
                                         ",\"code\":", HttpStatus(FromGrpc(st).code()),
                                         "}"));
          }
          // The browser reconnects (retry above) and gets a fresh snapshot.
          sink.done();
          return true;
        });
  });

  // --- figures: the CLI's SVGs ---
  auto svg = [fail](httplib::Response& res, const absl::StatusOr<Figure>& fig) {
    if (!fig.ok()) return fail(res, fig.status());
    res.set_content(fig->svg, "image/svg+xml; charset=utf-8");
  };
  svr.Get("/plot/reliability.svg", [sp, svg, bad](const httplib::Request& req,
                                                  httplib::Response& res) {
    Session& s = *sp;
    int64_t job = 0, epoch = 0;
    std::string error;
    if (!IntParam(req, "job", 1, INT64_MAX, &job, &error)) return bad(res, error);
    if (req.has_param("epoch") &&
        !IntParam(req, "epoch", 0, 10000, &epoch, &error))
      return bad(res, error);
    svg(res, ReliabilityFigure(s, job, static_cast<uint32_t>(epoch),
                               req.has_param("split") ? req.get_param_value("split")
                                                      : "test"));
  });
  svr.Get("/plot/curves.svg", [sp, svg, bad](const httplib::Request& req,
                                             httplib::Response& res) {
    Session& s = *sp;
    int64_t sweep = 0, job = 0;
    std::string error;
    if (req.has_param("job")) {
      if (!IntParam(req, "job", 1, INT64_MAX, &job, &error)) return bad(res, error);
    } else if (!IntParam(req, "sweep", 1, INT64_MAX, &sweep, &error)) {
      return bad(res, error);
    }
    absl::StatusOr<const calib::Metric*> metric = calib::ParseMetric(
        req.has_param("metric") ? req.get_param_value("metric") : "ece", "metric");
    if (!metric.ok()) return bad(res, std::string(metric.status().message()));
    svg(res, CurvesFigure(s, sweep, job, **metric,
                          req.has_param("split") ? req.get_param_value("split")
                                                 : "test"));
  });
  svr.Get("/plot/sweep.svg", [sp, svg, bad](const httplib::Request& req,
                                            httplib::Response& res) {
    Session& s = *sp;
    int64_t sweep = 0;
    std::string error;
    if (!IntParam(req, "sweep", 1, INT64_MAX, &sweep, &error)) return bad(res, error);
    absl::StatusOr<const calib::Metric*> metric = calib::ParseMetric(
        req.has_param("metric") ? req.get_param_value("metric") : "ece", "metric",
        /*summarized_only=*/true);
    if (!metric.ok()) return bad(res, std::string(metric.status().message()));
    const std::string param = req.get_param_value("param");
    if (!param.empty() && calib::MethodsWithHyperparameter(param).empty()) {
      return bad(res, absl::StrCat("param must be one of ",
                                   calib::HyperparameterNames(), ", got \"",
                                   param.substr(0, 40), "\""));
    }
    svg(res, SweepFigure(s, sweep, **metric, param,
                         req.has_param("split") ? req.get_param_value("split")
                                                : "test",
                         req.get_param_value("vs")));
  });

  svr.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty() && res.status == 404) {
      res.set_content("{\"error\":\"no such page\"}\n", kJson);
    }
  });
  svr.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    if (res.status >= 500) {
      log_ << "mixcal dashboard: " << req.method << " " << req.path << " -> "
           << res.status << "\n";
    }
  });
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
    return d.status().code() == absl::StatusCode::kInvalidArgument ? kUsage
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
