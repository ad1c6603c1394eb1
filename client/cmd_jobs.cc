#include "client/commands.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/utf8.h"
#include "client/output.h"

namespace mixcal::client {

int Sweeps(const Parsed& p, Session& s, std::ostream& out, std::ostream& err,
           bool) {
  grpc::ClientContext ctx;
  s.Prepare(ctx);
  v1::ListSweepsRequest req;
  req.set_active_only(p.switches.count("active"));
  v1::ListSweepsResponse resp;
  grpc::Status st = s.api().ListSweeps(&ctx, req, &resp);
  if (!st.ok()) return s.Fail(st);
  if (p.Get("format") == "json")
    return PrintJson(JsonArray(resp.sweeps()), out, err);
  std::vector<std::vector<std::string>> rows;
  for (const auto& w : resp.sweeps()) {
    const auto& c = w.counts();
    rows.push_back({absl::StrCat(w.id()), w.name(), SweepStateName(w.state()),
                    absl::StrCat(w.job_ids_size()), absl::StrCat(c.queued()),
                    absl::StrCat(c.running()), absl::StrCat(c.succeeded()),
                    absl::StrCat(c.failed()), absl::StrCat(c.cancelled()),
                    Ago(w.created_at_us()),
                    w.submitter().empty() ? "-" : w.submitter()});
  }
  PrintTable(out,
             {"id", "name", "state", "jobs", "queued", "running", "done",
              "failed", "cancelled", "created", "by"},
             rows);
  return kOk;
}

int Jobs(const Parsed& p, Session& s, std::ostream& out, std::ostream& err,
         bool) {
  if (p.Has("job")) {  // one job: its state and the settings it trains with
    int64_t id;
    if (!ParseId("--job", p.Get("job"), &id, err)) return kUsage;
    v1::GetJobRequest jreq;
    jreq.set_job_id(id);
    v1::Job j;
    grpc::Status st = s.Call(&v1::ExperimentService::Stub::GetJob, jreq, &j);
    if (!st.ok()) return s.Fail(st);
    if (p.Get("format") == "json") return PrintJson(ToJson(j), out, err);
    out << "job " << j.id() << " of sweep " << j.sweep_id() << ": "
        << MethodLabel(j.method(), j.value()) << ", seed " << j.seed() << ", "
        << StateName(j.state()) << ", epoch " << j.last_epoch()
        << (j.error().empty() ? "" : ", " + ToValidUtf8(j.error(), 200))
        << "\n";
    // Left-aligned: the values are words and numbers alike.
    size_t width = 0;
    for (const v1::Setting& x : j.settings())
      width = std::max(width, x.name().size());
    out << "settings it trains with (defaults filled in):\n";
    for (const v1::Setting& x : j.settings())
      out << "  " << x.name() << std::string(width + 2 - x.name().size(), ' ')
          << x.value() << "\n";
    return kOk;
  }
  v1::ListJobsRequest req;
  if (!p.positional.empty()) {
    int64_t id;
    if (!ParseId("SWEEP", p.positional[0], &id, err)) return kUsage;
    req.set_sweep_id(id);
    // A sweep that does not exist is an error (NOT_FOUND: "no sweep N"),
    // not an empty table.
    v1::GetSweepRequest sreq;
    sreq.set_sweep_id(id);
    v1::Sweep sweep;
    grpc::Status st = s.Call(&v1::ExperimentService::Stub::GetSweep, sreq, &sweep);
    if (!st.ok()) return s.Fail(st);
  }
  grpc::ClientContext ctx;
  s.Prepare(ctx);
  v1::ListJobsResponse resp;
  grpc::Status st = s.api().ListJobs(&ctx, req, &resp);
  if (!st.ok()) return s.Fail(st);
  if (p.Get("format") == "json")
    return PrintJson(JsonArray(resp.jobs()), out, err);
  std::vector<std::vector<std::string>> rows;
  for (const auto& j : resp.jobs()) {
    rows.push_back(
        {absl::StrCat(j.id()), absl::StrCat(j.sweep_id()), j.method(),
         j.method() == "baseline" ? "-" : absl::StrFormat("%g", j.value()),
         absl::StrCat(j.seed()), StateName(j.state()),
         absl::StrCat(j.last_epoch()),
         // Attempts that count against max_attempts, then hand-backs.
         absl::StrCat(j.attempt() - std::min(j.attempt(), j.handbacks()), "/",
                      j.max_attempts()),
         absl::StrCat(j.handbacks()),
         j.worker_id() ? absl::StrCat(j.worker_id()) : "-",
         ToValidUtf8(j.error(), 60)});
  }
  PrintTable(out,
             {"id", "sweep", "method", "value", "seed", "state", "epoch",
              "attempts", "handed back", "worker", "error"},
             rows);
  return kOk;
}

int Workers(const Parsed& p, Session& s, std::ostream& out, std::ostream& err,
            bool) {
  grpc::ClientContext ctx;
  s.Prepare(ctx);
  v1::ListWorkersResponse resp;
  grpc::Status st = s.api().ListWorkers(&ctx, v1::ListWorkersRequest(), &resp);
  if (!st.ok()) return s.Fail(st);
  if (p.Get("format") == "json")
    return PrintJson(JsonArray(resp.workers()), out, err);
  // What a person wants to know: busy (a job), idle, or gone. A worker the
  // coordinator still counts as active but has not heard from for over a
  // minute (killed, its machine down) is gone too; gone ones are listed
  // only with --all.
  const int64_t now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  const bool all = p.switches.count("all") > 0;
  int hidden = 0;
  std::vector<std::vector<std::string>> rows;
  for (const auto& w : resp.workers()) {
    const std::string state = WorkerStateWords(w, now_us);
    if (!all && state.rfind("gone", 0) == 0) {
      ++hidden;
      continue;
    }
    // The reason, on one line and cut for the table (--format json has it
    // whole).
    std::string reason = w.state_reason();
    std::replace(reason.begin(), reason.end(), '\n', ' ');
    if (reason.size() > 100) reason = ToValidUtf8(reason, 97) + "...";
    rows.push_back(
        {absl::StrCat(w.id()), w.name().empty() ? "-" : w.name(), w.host(),
         w.device_name().empty() || w.device_name() == w.device()
             ? w.device()
             : absl::StrCat(w.device(), " (", w.device_name(), ")"),
         state,
         w.current_job_id() ? absl::StrCat(w.current_job_id()) : "-",
         Ago(w.last_heartbeat_us()),
         w.placement().empty() ? "-" : w.placement(),
         reason.empty() ? "-" : reason});
  }
  PrintTable(out,
             {"id", "name", "host", "device", "state", "job", "heartbeat",
              "placed", "why"},
             rows);
  if (hidden > 0)
    out << "(" << hidden << " gone worker(s) not shown; --all lists them)\n";
  if (!resp.launcher_events().empty()) {
    out << "\nlauncher (newest " << resp.launcher_events_size()
        << " events):\n";
    for (const v1::Event& e : resp.launcher_events())
      out << "  " << Ago(e.time_us()) << "  " << e.kind() << "  "
          << e.message() << "\n";
  }
  return kOk;
}

int Backup(const Parsed& p, Session& s, std::ostream& out, std::ostream& err,
           bool) {
  grpc::ClientContext ctx;
  s.Prepare(ctx, /*deadline=*/false);  // a large store takes minutes
  v1::BackupStoreResponse resp;
  grpc::Status st =
      s.api().BackupStore(&ctx, v1::BackupStoreRequest(), &resp);
  if (!st.ok()) return s.Fail(st);
  if (p.Get("format") == "json") return PrintJson(ToJson(resp), out, err);
  out << "backup " << resp.dir() << ": database "
      << absl::StrFormat("%.1f", resp.database_bytes() / 1e6)
      << " MB, predictions "
      << absl::StrFormat("%.1f", resp.predictions_bytes() / 1e6) << " MB, "
      << absl::StrFormat("%.2f", resp.seconds()) << " s\n";
  return kOk;
}

int Cancel(const Parsed& p, Session& s, std::ostream& out, std::ostream& err,
           bool) {
  grpc::ClientContext ctx;
  s.Prepare(ctx);
  int64_t id;
  if (p.Has("job")) {
    if (!p.positional.empty()) {
      err << "mixcal: give a SWEEP or --job JOB, not both\n";
      return kUsage;
    }
    if (!ParseId("--job", p.Get("job"), &id, err)) return kUsage;
    v1::CancelJobRequest req;
    req.set_job_id(id);
    v1::Job job;
    grpc::Status st = s.api().CancelJob(&ctx, req, &job);
    if (!st.ok()) return s.Fail(st);
    if (p.Get("format") == "json") return PrintJson(ToJson(job), out, err);
    out << "job " << job.id() << " cancelled\n";
    return kOk;
  }
  if (p.positional.empty()) {
    err << "usage: mixcal cancel SWEEP | --job JOB\n";
    return kUsage;
  }
  if (!ParseId("SWEEP", p.positional[0], &id, err)) return kUsage;
  v1::CancelSweepRequest req;
  req.set_sweep_id(id);
  v1::Sweep sweep;
  grpc::Status st = s.api().CancelSweep(&ctx, req, &sweep);
  if (!st.ok()) return s.Fail(st);
  if (p.Get("format") == "json") return PrintJson(ToJson(sweep), out, err);
  out << "sweep " << sweep.id() << " " << SweepStateName(sweep.state()) << ": "
      << sweep.counts().cancelled()
      << " of its jobs cancelled (now and before; mixcal events " << sweep.id()
      << " says who)\n";
  return kOk;
}

int Events(const Parsed& p, Session& s, std::ostream& out, std::ostream& err,
           bool) {
  v1::ListEventsRequest req;
  int64_t id;
  if (!ParseId("SWEEP", p.positional[0], &id, err)) return kUsage;
  req.set_sweep_id(id);
  if (p.Has("job")) {
    if (!ParseId("--job", p.Get("job"), &id, err)) return kUsage;
    req.set_job_id(id);
  }
  size_t limit = 1000;
  if (p.Has("limit") &&
      (!absl::SimpleAtoi(p.Get("limit"), &limit) || limit < 1 ||
       limit > 1000000)) {
    err << "mixcal: --limit must be in [1, 1000000], got \"" << p.Get("limit")
        << "\"\n";
    return kUsage;
  }
  // The sweep first: a sweep that does not exist is an error, not an
  // empty list.
  v1::GetSweepRequest sreq;
  sreq.set_sweep_id(req.sweep_id());
  v1::Sweep sweep;
  grpc::Status st = s.Call(&v1::ExperimentService::Stub::GetSweep, sreq, &sweep);
  if (!st.ok()) return s.Fail(st);
  // Every page, oldest first; the newest `limit` are shown.
  std::vector<v1::Event> all;
  st = s.ForEachEvent(req, [&](v1::Event& e) { all.push_back(std::move(e)); });
  if (!st.ok()) return s.Fail(st);
  const size_t total = all.size();
  if (all.size() > limit) all.erase(all.begin(), all.end() - limit);
  if (p.Get("format") == "json") {
    v1::ListEventsResponse shown;
    for (auto& e : all) *shown.add_events() = std::move(e);
    return PrintJson(JsonArray(shown.events()), out, err);
  }
  std::vector<std::vector<std::string>> rows;
  for (const v1::Event& e : all) {
    std::string message = e.message();
    std::replace(message.begin(), message.end(), '\n', ' ');
    rows.push_back({Ago(e.time_us()),
                    e.job_id() ? absl::StrCat(e.job_id()) : "sweep", e.kind(),
                    message});
  }
  if (total > all.size())
    out << "(the newest " << all.size() << " of " << total
        << " events; --limit shows more)\n";
  PrintTable(out, {"when", "job", "event", "what"}, rows);
  return kOk;
}

int Retry(const Parsed& p, Session& s, std::ostream& out, std::ostream& err,
          bool) {
  int64_t id;
  if (!ParseId("JOB", p.positional[0], &id, err)) return kUsage;
  grpc::ClientContext ctx;
  s.Prepare(ctx);
  v1::RetryJobRequest req;
  req.set_job_id(id);
  v1::Job job;
  grpc::Status st = s.api().RetryJob(&ctx, req, &job);
  if (!st.ok()) return s.Fail(st);
  if (p.Get("format") == "json") return PrintJson(ToJson(job), out, err);
  out << "job " << job.id() << " queued again\n";
  return kOk;
}

}  // namespace mixcal::client
