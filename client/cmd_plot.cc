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
#include "client/output.h"
#include "calib/config.h"
#include "calib/metric_table.h"
#include "calib/stats.h"
#include "client/plot.h"
#include "spec/metric_values.h"

namespace mixcal::client {
namespace {

// plot evolution JOB [--with JOB2,...] [--epochs E1,E2,...] [--split train]
int PlotEvolution(int64_t id, const Parsed& p, Session& s, std::ostream& out,
                  std::ostream& err) {
  const std::string split = p.Get("split", "train");
  std::vector<int64_t> jobs = {id};
  if (p.Has("with")) {
    for (absl::string_view part : absl::StrSplit(p.Get("with"), ',')) {
      int64_t other;
      if (!ParseId("--with", std::string(part), &other, err)) return kUsage;
      jobs.push_back(other);
    }
  }
  if (jobs.size() > 8) {
    err << "mixcal: --with takes at most 7 more jobs, got " << jobs.size() - 1
        << "\n";
    return kUsage;
  }
  std::vector<uint32_t> epochs;
  if (p.Has("epochs")) {
    for (absl::string_view part : absl::StrSplit(p.Get("epochs"), ',')) {
      uint32_t e;
      if (!absl::SimpleAtoi(part, &e) || e == 0) {
        err << "mixcal: --epochs must be a list of positive epochs such as "
               "1,5,10,30, got \""
            << p.Get("epochs") << "\"\n";
        return kUsage;
      }
      epochs.push_back(e);
    }
    if (epochs.size() > 12) {
      err << "mixcal: --epochs takes at most 12 epochs, got " << epochs.size()
          << "\n";
      return kUsage;
    }
  }
  std::vector<EvolutionRow> rows;
  for (int64_t job_id : jobs) {
    v1::GetJobRequest jreq;
    jreq.set_job_id(job_id);
    v1::Job job;
    grpc::Status st = s.Call(&v1::ExperimentService::Stub::GetJob, jreq, &job);
    if (!st.ok()) return s.Fail(st);
    if (job.last_epoch() == 0) {
      err << "mixcal: job " << job_id << " has no epochs stored yet\n";
      return kServerError;
    }
    std::vector<uint32_t> chosen = epochs;
    if (chosen.empty()) {
      // Four epochs spread from the first to the newest.
      const uint32_t last = job.last_epoch();
      for (uint32_t e : {1u, std::max(1u, last / 4), std::max(1u, last / 2),
                         last})
        if (chosen.empty() || chosen.back() != e) chosen.push_back(e);
    }
    EvolutionRow row;
    row.label = absl::StrCat("job ", job_id, ": ",
                             MethodLabel(job.method(), job.value()));
    for (uint32_t e : chosen) {
      v1::GetReliabilityRequest req;
      req.set_job_id(job_id);
      req.set_epoch(e);
      req.set_split(split);
      v1::GetReliabilityResponse r;
      st = s.Call(&v1::ExperimentService::Stub::GetReliability, req, &r);
      if (!st.ok()) {
        if (st.error_code() == grpc::StatusCode::NOT_FOUND && split == "train")
          err << "mixcal: (split train exists when the sweep sets "
                 "evaluation.trainEvalCount; --split test shows the test set)\n";
        return s.Fail(st);
      }
      EvolutionPanel panel;
      panel.epoch = r.epoch();
      panel.ece = r.ece();
      panel.oe = r.oe();
      for (const auto& b : r.bins())
        panel.bins.push_back({b.count(), b.confidence_sum(), b.correct()});
      row.panels.push_back(std::move(panel));
    }
    rows.push_back(std::move(row));
  }
  const std::string path =
      p.Get("out", absl::StrCat("evolution-job", id, "-", split, ".svg"));
  return WriteOutputFile(
             path,
             EvolutionPlot(absl::StrCat("reliability on ", split,
                                        " across training (bubble: a "
                                        "confidence bin)"),
                           rows),
             p.Get("format", "text"), out, err)
             ? kOk
             : kServerError;
}

}  // namespace

int Plot(const Parsed& p, Session& s, std::ostream& out, std::ostream& err,
         bool) {
  const std::string kind = p.positional[0];
  const bool per_job = kind == "reliability" || kind == "evolution";
  int64_t id;
  if (!ParseId(per_job ? "JOB" : "SWEEP", p.positional[1], &id, err))
    return kUsage;
  if (kind == "evolution") return PlotEvolution(id, p, s, out, err);
  const std::string split = p.Get("split", "test");
  const std::string metric = p.Get("metric", "ece");
  // Exact names of the metric table only (no prefix or substring match).
  absl::StatusOr<const calib::Metric*> known =
      calib::ParseMetric(metric, "--metric",
                         /*summarized_only=*/kind == "sweep");
  if (!per_job && !known.ok()) {
    err << "mixcal: " << known.status().message() << "\n";
    return kUsage;
  }
  if (kind == "reliability") {
    uint32_t epoch = 0;
    if (p.Has("epoch") &&
        (!absl::SimpleAtoi(p.Get("epoch"), &epoch) || epoch == 0)) {
      err << "mixcal: --epoch must be a positive number, got \""
          << p.Get("epoch") << "\"\n";
      return kUsage;
    }
    grpc::ClientContext ctx;
    s.Prepare(ctx);
    v1::GetReliabilityRequest req;
    req.set_job_id(id);
    req.set_epoch(epoch);
    req.set_split(split);
    v1::GetReliabilityResponse r;
    grpc::Status st = s.api().GetReliability(&ctx, req, &r);
    if (!st.ok()) return s.Fail(st);
    std::vector<Bin> bins;
    for (const auto& b : r.bins())
      bins.push_back({b.count(), b.confidence_sum(), b.correct()});
    const std::string path =
        p.Get("out", absl::StrCat("reliability-job", id, "-epoch", r.epoch(),
                                  "-", split, ".svg"));
    return WriteOutputFile(path,
                     ReliabilityPlot(absl::StrCat("job ", id, ", epoch ",
                                                  r.epoch(), ", ", split),
                                     bins, r.ece(), r.mce(), r.oe()),
                     p.Get("format", "text"), out, err)
               ? kOk
               : kServerError;
  }
  if (kind == "curves") {
    v1::QueryMetricsRequest req;
    req.mutable_filter()->set_sweep_id(id);
    req.mutable_filter()->set_split(split);
    req.mutable_filter()->set_page_size(10000);
    // (method, value) -> epoch -> values over seeds
    std::map<std::pair<std::string, double>,
             std::map<uint32_t, std::vector<double>>>
        groups;
    grpc::Status st = s.ForEachMetricsPage(
        req, [&](const v1::QueryMetricsResponse& resp) {
          for (const auto& m : resp.rows())
            if (auto v = spec::MetricValue(m, **known))
              groups[{m.method(), m.value()}][m.epoch()].push_back(*v);
        });
    if (!st.ok()) return s.Fail(st);
    if (groups.empty()) {
      err << "mixcal: sweep " << id << " has no " << metric << " on split "
          << split << " yet\n";
      return kServerError;
    }
    std::vector<Series> series;
    for (const auto& [key, epochs] : groups) {
      Series sr;
      sr.label = MethodLabel(key.first, key.second);
      for (const auto& [epoch, values] : epochs) {
        const calib::MeanStd ms = calib::MeanAndStd(values);
        sr.x.push_back(epoch);
        sr.y.push_back(ms.mean);
        sr.lo.push_back(ms.mean - ms.std);
        sr.hi.push_back(ms.mean + ms.std);
      }
      series.push_back(std::move(sr));
    }
    const std::string path =
        p.Get("out", absl::StrCat("curves-sweep", id, "-", metric, ".svg"));
    return WriteOutputFile(path,
                     LinePlot(absl::StrCat("sweep ", id, ": ", metric, " on ",
                                           split, " (mean ± std over seeds)"),
                              "epoch", metric, series),
                     p.Get("format", "text"), out, err)
               ? kOk
               : kServerError;
  }
  if (kind == "sweep") {
    const std::string param = p.Get("param");
    std::set<std::string> methods;
    for (calib::MethodKind m : calib::MethodsWithHyperparameter(param))
      methods.insert(std::string(calib::Name(m)));
    if (!param.empty() && methods.empty()) {
      err << "mixcal: --param must be one of "
          << calib::HyperparameterNames() << ", got \"" << param << "\"\n";
      return kUsage;
    }
    const std::string vs = p.Get("vs");
    v1::SummarizeSweepRequest req;
    req.set_sweep_id(id);
    req.mutable_at()->set_final(true);
    req.set_split(split);
    req.set_vs(vs);
    v1::SummarizeSweepResponse resp;
    grpc::Status st =
        s.Call(&v1::ExperimentService::Stub::SummarizeSweep, req, &resp);
    if (!st.ok()) return s.Fail(st);
    std::map<std::string, Series> by_method;
    std::optional<double> baseline;
    std::string vs_label;
    double xmin = INFINITY, xmax = -INFINITY;
    for (const auto& r : resp.rows()) {
      const v1::MetricStat* stat = nullptr;
      for (const auto& m : r.stats())
        if (m.metric() == metric) stat = &m;
      if (stat == nullptr) continue;
      if (!vs.empty()) {
        // The paired difference to the reference, with its 95% interval;
        // the reference itself is the zero line.
        if (r.method() == r.vs_method() && r.value() == r.vs_value()) {
          vs_label = MethodLabel(r.vs_method(), r.vs_value());
          baseline = 0;
          continue;
        }
        if (!stat->has_vs()) continue;
        if (r.method() == "baseline" ||
            (!methods.empty() && !methods.count(r.method())))
          continue;
        const v1::PairedComparison& c = stat->vs();
        Series& sr = by_method[r.method()];
        sr.label = r.method();
        sr.markers = true;
        sr.x.push_back(r.value());
        sr.y.push_back(c.mean());
        // One pair has no interval: the point alone.
        sr.lo.push_back(std::isfinite(c.low()) ? c.low() : c.mean());
        sr.hi.push_back(std::isfinite(c.high()) ? c.high() : c.mean());
        xmin = std::min(xmin, r.value());
        xmax = std::max(xmax, r.value());
        continue;
      }
      if (r.method() == "baseline") {
        baseline = stat->mean();
        continue;
      }
      if (!methods.empty() && !methods.count(r.method())) continue;
      Series& sr = by_method[r.method()];
      sr.label = r.method();
      sr.markers = true;
      sr.x.push_back(r.value());
      sr.y.push_back(stat->mean());
      sr.lo.push_back(stat->mean() - stat->std());
      sr.hi.push_back(stat->mean() + stat->std());
      xmin = std::min(xmin, r.value());
      xmax = std::max(xmax, r.value());
    }
    if (by_method.empty()) {
      err << "mixcal: sweep " << id << " has no finished "
          << (param.empty() ? "method with values" : param) << " to plot\n";
      return kServerError;
    }
    std::vector<Series> series;
    for (auto& [name, sr] : by_method) {
      std::vector<size_t> order(sr.x.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::sort(order.begin(), order.end(),
                [&](size_t a, size_t b) { return sr.x[a] < sr.x[b]; });
      Series sorted = sr;
      for (size_t i = 0; i < order.size(); ++i) {
        sorted.x[i] = sr.x[order[i]];
        sorted.y[i] = sr.y[order[i]];
        sorted.lo[i] = sr.lo[order[i]];
        sorted.hi[i] = sr.hi[order[i]];
      }
      series.push_back(std::move(sorted));
    }
    if (baseline) {
      Series b;
      b.label = vs.empty() ? "baseline" : absl::StrCat(vs_label, " (zero)");
      b.dashed = true;
      b.x = {xmin, xmax};
      b.y = {*baseline, *baseline};
      series.push_back(b);
    }
    const std::string path =
        p.Get("out", absl::StrCat("sweep", id, "-", metric,
                                  vs.empty() ? "" : "-diff", "-vs-",
                                  param.empty() ? "value" : param, ".svg"));
    return WriteOutputFile(
               path,
               vs.empty()
                   ? LinePlot(absl::StrCat("sweep ", id, ": final ", metric,
                                           " on ", split,
                                           " (mean ± std over seeds)"),
                              param.empty() ? "hyperparameter value" : param,
                              metric, series)
                   : LinePlot(absl::StrCat("sweep ", id, ": final ", metric,
                                           " on ", split, " minus ", vs_label,
                                           " (paired by seed, 95% CI)"),
                              param.empty() ? "hyperparameter value" : param,
                              absl::StrCat(metric, " difference"), series),
               p.Get("format", "text"), out, err)
               ? kOk
               : kServerError;
  }
  err << "mixcal: plot KIND must be reliability, evolution, curves or sweep, "
         "got \""
      << kind << "\"\n";
  return kUsage;
}

}  // namespace mixcal::client
