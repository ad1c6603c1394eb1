#include "client/dashboard_routes.h"

#include <httplib.h>

#include <chrono>
#include <cstdint>
#include <sstream>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "calib/config.h"
#include "calib/metric_table.h"
#include "client/commands.h"
#include "client/dashboard_http.h"
#include "client/dashboard_json.h"
#include "client/dashboard_stream.h"
#include "client/figures.h"
#include "client/output.h"
#include "client/plot.h"

namespace mixcal::client {

// The page shells, script and style (client/dashboard_assets.cc).
extern const char kDashboardPage[];
extern const char kDashboardScript[];
extern const char kDashboardStyle[];

namespace {

using SessionHandler = void (*)(Session&, const httplib::Request&,
                                httplib::Response&);

// Handlers run after AddDashboardRoutes returns: they hold the session by
// pointer.
httplib::Server::Handler Bind(Session& session, SessionHandler h) {
  Session* s = &session;
  return [s, h](const httplib::Request& req, httplib::Response& res) {
    h(*s, req, res);
  };
}

void ReplyJson(httplib::Response& res, const std::string& body) {
  res.set_content(body, kJsonContentType);
}

std::string ParamOr(const httplib::Request& req, const char* name,
                    const std::string& fallback) {
  return req.has_param(name) ? req.get_param_value(name) : fallback;
}

// --- pages and assets ---

void Page(const httplib::Request&, httplib::Response& res) {
  res.set_content(kDashboardPage, "text/html; charset=utf-8");
}

// A sweep's page names its two first requests in the head, so the browser
// fetches them while it loads the script.
void SweepPage(const httplib::Request& req, httplib::Response& res) {
  const std::string id = req.matches[1].str();
  std::string html = kDashboardPage;
  const std::string marker = "<!--PRELOAD-->";
  html.replace(
      html.find(marker), marker.size(),
      absl::StrCat("<link rel=\"preload\" as=\"fetch\" crossorigin "
                   "href=\"/api/sweep/",
                   id,
                   "\">\n<link rel=\"preload\" as=\"fetch\" crossorigin "
                   "href=\"/api/sweep/",
                   id, "/summary?at=final&amp;split=test&amp;vs=baseline\">"));
  res.set_content(html, "text/html; charset=utf-8");
}

// --- JSON ---

void ApiSweeps(Session& s, const httplib::Request&, httplib::Response& res) {
  v1::ListSweepsRequest req;
  req.set_limit(1000);
  v1::ListSweepsResponse resp;
  grpc::Status st =
      s.Call(&v1::ExperimentService::Stub::ListSweeps, req, &resp);
  if (!st.ok()) return ReplyFailure(res, FromGrpc(st), s.address());
  JsonList out(",\n");
  for (const v1::Sweep& sw : resp.sweeps()) out.Add(SweepJson(sw));
  ReplyJson(res, out.str() + "\n");
}

void ApiSweep(Session& s, const httplib::Request& req, httplib::Response& res) {
  const int64_t id = PathId(req);
  v1::GetSweepRequest sreq;
  sreq.set_sweep_id(id);
  v1::Sweep sweep;
  grpc::Status st =
      s.Call(&v1::ExperimentService::Stub::GetSweep, sreq, &sweep);
  if (!st.ok()) return ReplyFailure(res, FromGrpc(st), s.address());
  v1::ListJobsRequest jreq;
  jreq.set_sweep_id(id);
  jreq.set_limit(10000);
  v1::ListJobsResponse jobs;
  st = s.Call(&v1::ExperimentService::Stub::ListJobs, jreq, &jobs);
  if (!st.ok()) return ReplyFailure(res, FromGrpc(st), s.address());
  // Each job's newest test row: what the table shows before live updates.
  v1::QueryMetricsRequest mreq;
  mreq.mutable_filter()->set_sweep_id(id);
  mreq.mutable_filter()->set_split("test");
  mreq.mutable_filter()->set_latest_only(true);
  mreq.mutable_filter()->set_page_size(10000);
  JsonList latest;
  st = s.ForEachMetricsPage(mreq, [&](const v1::QueryMetricsResponse& r) {
    for (const v1::EpochMetrics& m : r.rows()) latest.Add(LatestJson(m));
  });
  if (!st.ok()) return ReplyFailure(res, FromGrpc(st), s.address());
  JsonList job_list(",\n");
  for (const v1::Job& j : jobs.jobs()) job_list.Add(JobJson(j));
  ReplyJson(res, JsonObject()
                         .Raw("sweep", SweepJson(sweep))
                         .Raw("jobs", job_list.str())
                         .Raw("latest", latest.str())
                         .str() +
                     "\n");
}

void ApiSummary(Session& s, const httplib::Request& req,
                httplib::Response& res) {
  v1::SummarizeSweepRequest sreq;
  sreq.set_sweep_id(PathId(req));
  const std::string at = ParamOr(req, "at", "final");
  if (at == "final") {
    sreq.mutable_at()->set_final(true);
  } else if (absl::StartsWith(at, "best:")) {
    sreq.mutable_at()->set_best_by(at.substr(5));
    // Chosen on validation data unless ?select= names another split (the
    // rows' selected_on says which).
    sreq.mutable_at()->set_best_split(req.get_param_value("select"));
  } else if (uint32_t e; absl::StartsWith(at, "epoch:") &&
                         absl::SimpleAtoi(at.substr(6), &e) && e > 0) {
    sreq.mutable_at()->set_epoch(e);
  } else {
    return ReplyBadRequest(
        res, absl::StrCat("at must be final, best:METRIC or epoch:N, got \"",
                          at.substr(0, 40), "\""));
  }
  sreq.set_split(ParamOr(req, "split", "test"));
  sreq.set_vs(req.get_param_value("vs"));
  v1::SummarizeSweepResponse resp;
  grpc::Status st =
      s.Call(&v1::ExperimentService::Stub::SummarizeSweep, sreq, &resp);
  if (!st.ok()) return ReplyFailure(res, FromGrpc(st), s.address());
  absl::StatusOr<std::string> rows = JsonArray(resp.rows());
  if (!rows.ok()) return ReplyFailure(res, rows.status(), s.address());
  ReplyJson(res, *rows + "\n");
}

// Downloads: octet-stream keeps a CSV of millions of rows uncompressed.
void ApiMetrics(Session& s, const httplib::Request& req,
                httplib::Response& res) {
  const int64_t id = PathId(req);
  const std::string format = req.matches[2].str();
  v1::QueryMetricsRequest mreq;
  mreq.mutable_filter()->set_sweep_id(id);
  mreq.mutable_filter()->set_page_size(10000);
  std::ostringstream out;
  grpc::Status st = WriteMetrics(s, mreq, format, out);
  if (!st.ok()) return ReplyFailure(res, FromGrpc(st), s.address());
  res.set_header("Content-Disposition",
                 absl::StrCat("attachment; filename=\"sweep", id, "-metrics.",
                              format, "\""));
  res.set_content(out.str(), format == "csv" ? "application/octet-stream"
                                             : kJsonContentType);
}

void ApiJob(Session& s, const httplib::Request& req, httplib::Response& res) {
  const int64_t id = PathId(req);
  v1::GetJobRequest jreq;
  jreq.set_job_id(id);
  v1::Job job;
  grpc::Status st = s.Call(&v1::ExperimentService::Stub::GetJob, jreq, &job);
  if (!st.ok()) return ReplyFailure(res, FromGrpc(st), s.address());
  // The splits this job has, from its newest epoch.
  v1::QueryMetricsRequest mreq;
  mreq.mutable_filter()->add_job_ids(id);
  mreq.mutable_filter()->set_latest_only(true);
  JsonList splits;
  st = s.ForEachMetricsPage(mreq, [&](const v1::QueryMetricsResponse& r) {
    for (const v1::EpochMetrics& m : r.rows())
      splits.Add(JsonString(m.split()));
  });
  if (!st.ok()) return ReplyFailure(res, FromGrpc(st), s.address());
  v1::ListEventsRequest ereq;
  ereq.set_job_id(id);
  ereq.set_limit(1000);
  v1::ListEventsResponse events;
  st = s.Call(&v1::ExperimentService::Stub::ListEvents, ereq, &events);
  if (!st.ok()) return ReplyFailure(res, FromGrpc(st), s.address());
  JsonList event_list(",\n");
  for (const v1::Event& e : events.events()) event_list.Add(EventJson(e));
  // The job's whole configuration (training, data, evaluation, method), as
  // the worker receives it.
  absl::StatusOr<std::string> config = ToJson(job.config());
  // And what it trains with, defaults filled in.
  JsonList settings;
  for (const v1::Setting& x : job.settings())
    settings.Add(JsonObject()
                     .String("name", x.name())
                     .String("value", x.value())
                     .str());
  ReplyJson(res, JsonObject()
                         .Raw("job", JobJson(job))
                         .Raw("config", config.ok() ? *config : "{}")
                         .Raw("settings", settings.str())
                         .Raw("splits", splits.str())
                         .Raw("events", event_list.str())
                         .str() +
                     "\n");
}

// What people did to a sweep, and its state changes: the sweep-level
// events and its jobs' cancellations and retries (who and when), newest
// 200, oldest first. Read on demand (the sweep page's "Events" section):
// a big sweep has thousands of lease events.
void ApiSweepLog(Session& s, const httplib::Request& req,
                 httplib::Response& res) {
  v1::ListEventsRequest ereq;
  ereq.set_sweep_id(PathId(req));
  std::vector<v1::Event> kept;
  grpc::Status st = s.ForEachEvent(ereq, [&](v1::Event& e) {
    if (e.job_id() == 0 || e.kind() == "cancelled" || e.kind() == "retried")
      kept.push_back(std::move(e));
  });
  if (!st.ok()) return ReplyFailure(res, FromGrpc(st), s.address());
  if (kept.size() > 200) kept.erase(kept.begin(), kept.end() - 200);
  JsonList out(",\n");
  for (const v1::Event& e : kept) out.Add(EventJson(e));
  ReplyJson(res, out.str() + "\n");
}

void ApiWorkers(Session& s, const httplib::Request&, httplib::Response& res) {
  v1::ListWorkersRequest req;
  v1::ListWorkersResponse resp;
  grpc::Status st =
      s.Call(&v1::ExperimentService::Stub::ListWorkers, req, &resp);
  if (!st.ok()) return ReplyFailure(res, FromGrpc(st), s.address());
  const int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  JsonList out(",\n");
  for (const v1::WorkerInfo& w : resp.workers()) out.Add(WorkerJson(w, now));
  ReplyJson(res, out.str() + "\n");
}

// --- figures: the CLI's SVGs ---

void ReplySvg(Session& s, httplib::Response& res,
              const absl::StatusOr<Figure>& fig) {
  // Nothing to draw yet (a sweep still running, a split without rows): a
  // figure that says so, not a broken image.
  if (!fig.ok() && (absl::IsNotFound(fig.status()) ||
                    absl::IsFailedPrecondition(fig.status()))) {
    res.set_content(MessagePlot(std::string(fig.status().message())),
                    "image/svg+xml; charset=utf-8");
    return;
  }
  if (!fig.ok()) return ReplyFailure(res, fig.status(), s.address());
  res.set_content(fig->svg, "image/svg+xml; charset=utf-8");
}

// "3,7,12": 1 to 50 job ids; false (with the reply's words) otherwise.
bool JobIds(const httplib::Request& req, std::vector<int64_t>* jobs) {
  for (absl::string_view part :
       absl::StrSplit(req.get_param_value("jobs"), ',', absl::SkipEmpty())) {
    int64_t id = 0;
    if (!absl::SimpleAtoi(part, &id) || id < 1 || jobs->size() >= 50)
      return false;
    jobs->push_back(id);
  }
  return !jobs->empty();
}
constexpr char kJobIdsWords[] = "jobs must be 1 to 50 job ids separated by commas";

void ReliabilitySvg(Session& s, const httplib::Request& req,
                    httplib::Response& res) {
  int64_t job = 0, epoch = 0;
  std::string error;
  if (req.has_param("jobs")) {  // chosen jobs' reliability on one axes
    std::vector<int64_t> jobs;
    if (!JobIds(req, &jobs)) return ReplyBadRequest(res, kJobIdsWords);
    if (req.has_param("epoch") &&
        !IntParam(req, "epoch", 0, 10000, &epoch, &error))
      return ReplyBadRequest(res, error);
    return ReplySvg(s, res,
                    JobsReliabilityFigure(s, jobs, static_cast<uint32_t>(epoch),
                                          ParamOr(req, "split", "test")));
  }
  if (!IntParam(req, "job", 1, INT64_MAX, &job, &error))
    return ReplyBadRequest(res, error);
  if (req.has_param("epoch") &&
      !IntParam(req, "epoch", 0, 10000, &epoch, &error))
    return ReplyBadRequest(res, error);
  ReplySvg(s, res,
           ReliabilityFigure(s, job, static_cast<uint32_t>(epoch),
                             ParamOr(req, "split", "test")));
}

void CurvesSvg(Session& s, const httplib::Request& req,
               httplib::Response& res) {
  int64_t sweep = 0, job = 0;
  std::string error;
  if (req.has_param("jobs")) {  // chosen jobs compared: "3,7,12"
    std::vector<int64_t> jobs;
    if (!JobIds(req, &jobs)) return ReplyBadRequest(res, kJobIdsWords);
    absl::StatusOr<const calib::Metric*> metric =
        calib::ParseMetric(ParamOr(req, "metric", "ece"), "metric");
    if (!metric.ok())
      return ReplyBadRequest(res, std::string(metric.status().message()));
    return ReplySvg(s, res,
                    JobsCurvesFigure(s, jobs, **metric,
                                     ParamOr(req, "split", "test")));
  }
  if (req.has_param("job")) {
    if (!IntParam(req, "job", 1, INT64_MAX, &job, &error))
      return ReplyBadRequest(res, error);
  } else if (!IntParam(req, "sweep", 1, INT64_MAX, &sweep, &error)) {
    return ReplyBadRequest(res, error);
  }
  absl::StatusOr<const calib::Metric*> metric =
      calib::ParseMetric(ParamOr(req, "metric", "ece"), "metric");
  if (!metric.ok())
    return ReplyBadRequest(res, std::string(metric.status().message()));
  ReplySvg(
      s, res,
      CurvesFigure(s, sweep, job, **metric, ParamOr(req, "split", "test")));
}

void SweepSvg(Session& s, const httplib::Request& req, httplib::Response& res) {
  int64_t sweep = 0;
  std::string error;
  if (!IntParam(req, "sweep", 1, INT64_MAX, &sweep, &error))
    return ReplyBadRequest(res, error);
  absl::StatusOr<const calib::Metric*> metric =
      calib::ParseMetric(ParamOr(req, "metric", "ece"), "metric",
                         /*summarized_only=*/true);
  if (!metric.ok())
    return ReplyBadRequest(res, std::string(metric.status().message()));
  const std::string param = req.get_param_value("param");
  if (!param.empty() && calib::MethodsWithHyperparameter(param).empty()) {
    return ReplyBadRequest(
        res, absl::StrCat("param must be one of ", calib::HyperparameterNames(),
                          ", got \"", param.substr(0, 40), "\""));
  }
  ReplySvg(s, res,
           SweepFigure(s, sweep, **metric, param, ParamOr(req, "split", "test"),
                       req.get_param_value("vs")));
}

}  // namespace

void AddDashboardRoutes(httplib::Server& svr, Session& session,
                        const RouteOptions& options, std::ostream& log) {
  svr.Get("/", Page);
  svr.Get(R"(/sweep/(\d+))", SweepPage);
  svr.Get(R"(/job/\d+)", Page);
  svr.Get("/workers", Page);
  svr.Get("/static/app.js", [](const httplib::Request&,
                               httplib::Response& res) {
    res.set_content(kDashboardScript, "application/javascript; charset=utf-8");
  });
  svr.Get("/static/style.css",
          [](const httplib::Request&, httplib::Response& res) {
            res.set_content(kDashboardStyle, "text/css; charset=utf-8");
          });

  Session* sp = &session;
  const std::string url = options.url;
  svr.Get("/api/health",
          [sp, url](const httplib::Request&, httplib::Response& res) {
            v1::ListWorkersRequest req;
            v1::ListWorkersResponse resp;
            grpc::Status st =
                sp->Call(&v1::ExperimentService::Stub::ListWorkers, req, &resp);
            ReplyJson(res, JsonObject()
                               .String("coordinator",
                                       st.ok() ? "ok" : st.error_message())
                               .Bool("ok", st.ok())
                               .String("url", url)
                               .str());
          });
  svr.Get("/api/sweeps", Bind(session, ApiSweeps));
  svr.Get(R"(/api/sweep/(\d+))", Bind(session, ApiSweep));
  svr.Get(R"(/api/sweep/(\d+)/summary)", Bind(session, ApiSummary));
  svr.Get(R"(/api/sweep/(\d+)/metrics\.(csv|json))", Bind(session, ApiMetrics));
  svr.Get(R"(/api/sweep/(\d+)/log)", Bind(session, ApiSweepLog));
  svr.Get(R"(/api/job/(\d+))", Bind(session, ApiJob));
  svr.Get("/api/workers", Bind(session, ApiWorkers));

  const int seconds = options.stream_seconds;
  svr.Get(R"(/api/sweep/(\d+)/events)",
          [sp, seconds](const httplib::Request& req, httplib::Response& res) {
            ServeSweepEvents(*sp, PathId(req), seconds, res);
          });

  svr.Get("/plot/reliability.svg", Bind(session, ReliabilitySvg));
  svr.Get("/plot/curves.svg", Bind(session, CurvesSvg));
  svr.Get("/plot/sweep.svg", Bind(session, SweepSvg));

  svr.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty() && res.status == 404) {
      res.set_content(ErrorJson("no such page") + "\n", kJsonContentType);
    }
  });
  std::ostream* lp = &log;
  svr.set_logger(
      [lp](const httplib::Request& req, const httplib::Response& res) {
        if (res.status >= 500) {
          *lp << "mixcal dashboard: " << req.method << " " << req.path << " -> "
              << res.status << "\n";
        }
      });
}

}  // namespace mixcal::client
