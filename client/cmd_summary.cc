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
#include "calib/metric_table.h"
#include "client/output.h"
#include "spec/metric_values.h"

namespace mixcal::client {

int Summary(int64_t sweep_id, const std::string& at, const std::string& split,
            const std::string& format, const std::string& vs, bool ensemble,
            Session& s, std::ostream& out, std::ostream& err,
            const std::string& select_split) {
  v1::SummarizeSweepRequest req;
  req.set_sweep_id(sweep_id);
  if (at.empty() || at == "final") {
    req.mutable_at()->set_final(true);
  } else if (at.rfind("best:", 0) == 0) {
    req.mutable_at()->set_best_by(at.substr(5));
    req.mutable_at()->set_best_split(select_split);
  } else if (at.rfind("epoch:", 0) == 0) {
    uint32_t e = 0;
    if (!absl::SimpleAtoi(at.substr(6), &e) || e == 0) {
      err << "mixcal: --at epoch:N needs N >= 1, got \"" << at << "\"\n";
      return kUsage;
    }
    req.mutable_at()->set_epoch(e);
  } else {
    err << "mixcal: --at must be final, best:METRIC or epoch:N, got \"" << at
        << "\"\n";
    return kUsage;
  }
  req.set_split(split);
  req.set_vs(vs);
  req.set_ensemble(ensemble);
  v1::SummarizeSweepResponse resp;
  grpc::Status st =
      s.Call(&v1::ExperimentService::Stub::SummarizeSweep, req, &resp);
  if (!st.ok()) return s.Fail(st);
  if (format == "json") return PrintJson(JsonArray(resp.rows()), out, err);
  auto stat = [](const v1::SummaryRow& r,
                 const std::string& name) -> const v1::MetricStat* {
    for (const auto& m : r.stats())
      if (m.metric() == name) return &m;
    return nullptr;
  };
  auto cell = [&](const v1::SummaryRow* r,
                  const std::string& name) -> std::string {
    const v1::MetricStat* m = r ? stat(*r, name) : nullptr;
    if (m == nullptr) return "-";
    return m->count() > 1 ? absl::StrCat(Num(m->mean()), " ± ", Num(m->std()))
                          : Num(m->mean());
  };
  if (!select_split.empty() && !req.at().has_best_by()) {
    err << "mixcal: --select-split needs --at best:METRIC\n";
    return kUsage;
  }
  if (format == "csv") {
    const bool best = req.at().has_best_by();
    out << "method,value,split,seeds,metric,mean,std,count";
    if (ensemble) out << ",ensemble";
    if (!vs.empty())
      out << ",vs_method,vs_value,vs_diff,vs_low,vs_high,vs_pairs,vs_significant";
    // With best:METRIC, the split each row's epochs were chosen on.
    if (best) out << ",selected_on";
    out << "\n";
    for (const auto& r : resp.rows())
      for (const auto& m : r.stats()) {
        out << r.method() << "," << r.value() << "," << r.split() << ","
            << r.seeds() << "," << m.metric() << "," << m.mean() << ","
            << m.std() << "," << m.count();
        if (ensemble) out << "," << (r.ensemble() ? 1 : 0);
        if (!vs.empty()) {
          out << "," << r.vs_method() << "," << r.vs_value() << ",";
          if (m.has_vs())
            out << m.vs().mean() << "," << m.vs().low() << "," << m.vs().high()
                << "," << m.vs().pairs() << ","
                << (m.vs().significant() ? 1 : 0);
          else
            out << ",,,,";
        }
        if (best) out << "," << r.selected_on();
        out << "\n";
      }
    return kOk;
  }
  // The papers' table: raw metrics of the split, then after temperature
  // scaling (its _ts variant: test_ts for test, val_ts for val; none for a
  // split that is itself calibrated).
  const std::string main_split = split.empty() ? "test" : split;
  const std::string ts_split =
      main_split == "test" || main_split == "val" ? main_split + "_ts" : "";
  if (!split.empty() && !ts_split.empty()) {
    v1::SummarizeSweepRequest ts_req = req;
    ts_req.set_split(ts_split);
    ts_req.set_ensemble(false);
    v1::SummarizeSweepResponse ts_resp;
    grpc::Status ts_st =
        s.Call(&v1::ExperimentService::Stub::SummarizeSweep, ts_req, &ts_resp);
    if (ts_st.ok()) {
      for (auto& r : *ts_resp.mutable_rows()) *resp.add_rows() = std::move(r);
    } else if (ts_st.error_code() != grpc::StatusCode::NOT_FOUND &&
               ts_st.error_code() != grpc::StatusCode::INVALID_ARGUMENT &&
               ts_st.error_code() != grpc::StatusCode::FAILED_PRECONDITION) {
      return s.Fail(ts_st);  // not "no such split": the coordinator's trouble
    }
  }
  std::map<std::pair<std::string, double>,
           std::map<std::string, const v1::SummaryRow*>>
      groups;
  std::vector<std::pair<std::string, double>> order;
  std::vector<const v1::SummaryRow*> ensembles;
  for (const auto& r : resp.rows()) {
    if (r.ensemble()) {
      ensembles.push_back(&r);
      continue;
    }
    auto key = std::make_pair(r.method(), r.value());
    if (!groups.count(key)) order.push_back(key);
    groups[key][r.split()] = &r;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& key : order) {
    const v1::SummaryRow* t =
        groups[key].count(main_split) ? groups[key][main_split] : nullptr;
    const v1::SummaryRow* ts =
        !ts_split.empty() && groups[key].count(ts_split) ? groups[key][ts_split]
                                                         : nullptr;
    rows.push_back({MethodLabel(key.first, key.second),
                    t ? absl::StrCat(t->seeds()) : "-", cell(t, "accuracy"),
                    cell(t, "ece"), cell(t, "oe"), cell(t, "mce"),
                    cell(t, "nll"), cell(t, "brier"), cell(ts, "ece"),
                    cell(ts, "nll"), cell(ts, "temperature")});
  }
  if (rows.empty()) {
    // A split asked for by name that the sweep lacks is the coordinator's
    // NOT_FOUND (naming those it has); here only the default, every split
    // read and none of them test.
    std::set<std::string> known;
    for (const auto& r : resp.rows()) known.insert(r.split());
    if (!known.empty()) {
      err << "mixcal: no split " << main_split << " in sweep " << sweep_id
          << " (known: " << absl::StrJoin(known, ", ") << ")\n";
      return kServerError;
    }
    out << "sweep " << sweep_id << ": no epochs stored yet\n";
    return kOk;
  }
  // "final" only once the sweep has ended: while it runs, each job's
  // newest epoch is not its last.
  std::string at_label = at.empty() ? "final" : at;
  if (at_label == "final") {
    v1::GetSweepRequest sreq;
    sreq.set_sweep_id(sweep_id);
    v1::Sweep sweep;
    if (s.Call(&v1::ExperimentService::Stub::GetSweep, sreq, &sweep).ok() &&
        sweep.state() == v1::SWEEP_ACTIVE) {
      uint32_t lo = 0, hi = 0;
      for (const auto& r : resp.rows())
        for (uint32_t e : r.epochs()) {
          lo = lo == 0 ? e : std::min(lo, e);
          hi = std::max(hi, e);
        }
      at_label = absl::StrCat(
          "the newest epoch (", lo == hi ? absl::StrCat(hi) : absl::StrCat(lo, "-", hi),
          " of ", sweep.spec().training().epochs(), "; the sweep is running)");
    }
  }
  out << "sweep " << sweep_id << ", split " << main_split << ", at "
      << at_label
      << " (mean ± std over seeds"
      << (ts_split.empty() ? "" : absl::StrCat("; TS: after temperature scaling, ", ts_split))
      << ")\n";
  if (req.at().has_best_by()) {
    // Where each epoch was chosen, as plainly as the numbers themselves.
    std::string on;
    for (const auto& key : order) {
      const v1::SummaryRow* t =
          groups[key].count(main_split) ? groups[key][main_split] : nullptr;
      if (t != nullptr) on = t->selected_on();
    }
    const bool test_data = on.rfind("test", 0) == 0;
    if (test_data) {
      out << "EPOCHS CHOSEN ON TEST DATA (split " << on
          << "): the numbers below are selected on the data they report\n";
    } else {
      out << "epochs chosen on validation data (split " << on
          << "; TS columns on val_ts)\n";
    }
  }
  PrintTable(out,
             {"method", "seeds", "accuracy", "ECE", "OE", "MCE", "NLL", "Brier",
              "ECE (TS)", "NLL (TS)", "T"},
             rows);
  if (ensemble) {
    std::vector<std::vector<std::string>> erows;
    for (const v1::SummaryRow* r : ensembles) {
      if (r->seeds() == 0) continue;  // no ensemble: said below
      erows.push_back({MethodLabel(r->method(), r->value()),
                       absl::StrCat(r->seeds()), cell(r, "accuracy"),
                       cell(r, "ece"), cell(r, "oe"), cell(r, "mce"),
                       cell(r, "nll"), cell(r, "brier")});
    }
    out << "\nseed ensembles: the average of each configuration's seeds' kept "
           "test probabilities\n";
    if (ensembles.empty()) {
      out << "(none: no job kept predictions at these epochs; "
             "evaluation.predictions keeps them)\n";
    } else if (erows.empty()) {
      out << "(none: see below)\n";
    } else {
      PrintTable(out,
                 {"method", "members", "accuracy", "ECE", "OE", "MCE", "NLL",
                  "Brier"},
                 erows);
    }
    for (const v1::SummaryRow* r : ensembles) {
      for (const std::string& why : r->left_out()) {
        out << (r->seeds() == 0 ? "no ensemble for " : "left out of ")
            << MethodLabel(r->method(), r->value())
            << (r->seeds() == 0 ? ": " : "'s ensemble: ") << Printable(why)
            << "\n";
      }
    }
  }
  if (vs.empty()) return kOk;

  // The comparison: each configuration minus the reference, paired by seed.
  auto diff = [&](const v1::SummaryRow* r,
                  const std::string& name) -> std::string {
    const v1::MetricStat* m = r ? stat(*r, name) : nullptr;
    if (m == nullptr || !m->has_vs()) return "-";
    const v1::PairedComparison& c = m->vs();
    if (c.pairs() < 2) return absl::StrCat(SignedNum(c.mean()), " (1 seed)");
    return absl::StrCat(SignedNum(c.mean()), " [", SignedNum(c.low()), ", ",
                        SignedNum(c.high()), "]", c.significant() ? " *" : "");
  };
  std::vector<std::vector<std::string>> diffs;
  std::string ref_label;
  for (const auto& key : order) {
    const v1::SummaryRow* t =
        groups[key].count(main_split) ? groups[key][main_split] : nullptr;
    const v1::SummaryRow* ts =
        !ts_split.empty() && groups[key].count(ts_split) ? groups[key][ts_split]
                                                         : nullptr;
    const v1::SummaryRow* any = t ? t : ts;
    if (any == nullptr) continue;
    ref_label = MethodLabel(any->vs_method(), any->vs_value());
    if (key.first == any->vs_method() && key.second == any->vs_value()) continue;
    diffs.push_back({MethodLabel(key.first, key.second), diff(t, "accuracy"),
                     diff(t, "ece"), diff(t, "oe"), diff(t, "nll"),
                     diff(ts, "ece")});
  }
  // An empty comparison says why instead of printing an empty table.
  bool any_pair = false;
  for (const auto& row : diffs)
    for (size_t c = 1; c < row.size(); ++c) any_pair |= row[c] != "-";
  if (diffs.empty()) {
    out << "\nno comparison: the sweep has no configuration other than "
        << (ref_label.empty() ? vs : ref_label) << "\n";
    return kOk;
  }
  if (!any_pair) {
    out << "\nno comparison with " << (ref_label.empty() ? vs : ref_label)
        << " yet: no configuration shares a seed with it at this point "
           "(paired differences need the same seed finished on both "
           "sides)\n";
    return kOk;
  }
  out << "\ndifference to " << ref_label
      << " (paired by seed: mean [95% CI, Student t]; * = the interval "
         "excludes 0)\n";
  PrintTable(out, {"method", "accuracy", "ECE", "OE", "NLL", "ECE (TS)"},
             diffs);
  return kOk;
}

int SummaryCmd(const Parsed& p, Session& s, std::ostream& out,
               std::ostream& err, bool) {
  int64_t id;
  if (!ParseId("SWEEP", p.positional[0], &id, err)) return kUsage;
  return Summary(id, p.Get("at", "final"), p.Get("split"),
                 p.Get("format", "text"), p.Get("vs"),
                 p.switches.count("ensemble") > 0, s, out, err,
                 p.Get("select-split"));
}

int MetricsCmd(const Parsed& p, Session& s, std::ostream& out,
               std::ostream& err, bool) {
  v1::QueryMetricsRequest req;
  v1::MetricsFilter* f = req.mutable_filter();
  int64_t id;
  if (p.Has("job")) {
    if (!ParseId("--job", p.Get("job"), &id, err)) return kUsage;
    f->add_job_ids(id);
  } else if (!p.positional.empty()) {
    if (!ParseId("SWEEP", p.positional[0], &id, err)) return kUsage;
    f->set_sweep_id(id);
  } else {
    err << "usage: mixcal metrics SWEEP | --job JOB [--split S] [--format "
           "csv|json]\n";
    return kUsage;
  }
  // A sweep or job that does not exist, or a split the sweep has no rows
  // of, is an error naming it, not an empty table.
  int64_t sweep_id = f->sweep_id();
  if (p.Has("job")) {
    v1::GetJobRequest jreq;
    jreq.set_job_id(id);
    v1::Job job;
    grpc::Status st = s.Call(&v1::ExperimentService::Stub::GetJob, jreq, &job);
    if (!st.ok()) return s.Fail(st);
    sweep_id = job.sweep_id();
  } else {
    v1::GetSweepRequest sreq;
    sreq.set_sweep_id(sweep_id);
    v1::Sweep sweep;
    grpc::Status st =
        s.Call(&v1::ExperimentService::Stub::GetSweep, sreq, &sweep);
    if (!st.ok()) return s.Fail(st);
  }
  if (p.Has("split")) {
    v1::SummarizeSweepRequest sreq;
    sreq.set_sweep_id(sweep_id);
    sreq.mutable_at()->set_final(true);
    v1::SummarizeSweepResponse sresp;
    grpc::Status st =
        s.Call(&v1::ExperimentService::Stub::SummarizeSweep, sreq, &sresp);
    if (!st.ok()) return s.Fail(st);
    std::set<std::string> known;
    for (const auto& r : sresp.rows()) known.insert(r.split());
    if (!known.empty() && !known.count(p.Get("split"))) {
      err << "mixcal: no split " << p.Get("split") << " in sweep " << sweep_id
          << " (known: " << absl::StrJoin(known, ", ") << ")\n";
      return kServerError;
    }
  }
  f->set_split(p.Get("split"));
  f->set_include_bins(p.switches.count("bins"));
  f->set_page_size(10000);
  const std::string format =
      p.Get("format", "text") == "text" ? "csv" : p.Get("format");
  if (p.switches.count("bins") && format != "json") {
    err << "mixcal: --bins needs --format json (a row's reliability bins do "
           "not fit CSV columns)\n";
    return kUsage;
  }
  grpc::Status st = WriteMetrics(s, req, format, out);
  if (!st.ok()) return s.Fail(st);
  return kOk;
}

grpc::Status WriteMetrics(Session& s, const v1::QueryMetricsRequest& req,
                          const std::string& format, std::ostream& out) {
  // The columns: the row's identity, then the metric table's metrics (an
  // optional one empty where the row has none), then wall_seconds.
  // Each row's sweep (the rows carry their job only): the filter's sweep,
  // or each filtered job's.
  std::map<int64_t, int64_t> sweep_of;
  if (format == "csv" && req.filter().sweep_id() == 0) {
    for (int64_t job_id : req.filter().job_ids()) {
      v1::GetJobRequest jreq;
      jreq.set_job_id(job_id);
      v1::Job job;
      grpc::Status st =
          s.Call(&v1::ExperimentService::Stub::GetJob, jreq, &job);
      if (!st.ok()) return st;
      sweep_of[job_id] = job.sweep_id();
    }
  }
  if (format == "csv") {
    out << "sweep_id,job_id,method,value,seed,epoch,split,count";
    for (const calib::Metric& m : calib::Metrics()) out << "," << m.name;
    out << ",wall_seconds\n";
  } else {
    out << "[";
  }
  bool first = true;
  // The first row that cannot be written as JSON ends the output.
  absl::Status json_error;
  auto g = [](double v) { return absl::StrFormat("%.9g", v); };
  grpc::Status st = s.ForEachMetricsPage(
      req, [&](const v1::QueryMetricsResponse& resp) {
        for (const auto& m : resp.rows()) {
          if (format == "csv") {
            out << (req.filter().sweep_id() > 0 ? req.filter().sweep_id()
                                                 : sweep_of[m.job_id()])
                << "," << m.job_id() << "," << m.method() << "," << g(m.value())
                << "," << m.seed() << "," << m.epoch() << "," << m.split()
                << "," << m.count();
            for (const calib::Metric& metric : calib::Metrics()) {
              std::optional<double> v = spec::MetricValue(m, metric);
              out << "," << (v ? g(*v) : "");
            }
            out << "," << g(m.wall_seconds()) << "\n";
          } else if (json_error.ok()) {
            absl::StatusOr<std::string> json = ToJson(m);
            if (!json.ok()) {
              json_error = json.status();
              continue;
            }
            out << (first ? "" : ",\n ") << *json;
          }
          first = false;
        }
      });
  if (!st.ok()) return st;
  if (!json_error.ok()) {
    return grpc::Status(static_cast<grpc::StatusCode>(json_error.code()),
                        std::string(json_error.message()));
  }
  if (format == "json") out << "]\n";
  return grpc::Status::OK;
}

}  // namespace mixcal::client
