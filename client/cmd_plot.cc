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

int Plot(const Parsed& p, Session& s, std::ostream& out, std::ostream& err,
         bool) {
  const std::string kind = p.positional[0];
  int64_t id;
  if (!ParseId(kind == "reliability" ? "JOB" : "SWEEP", p.positional[1], &id,
               err))
    return kUsage;
  const std::string split = p.Get("split", "test");
  const std::string metric = p.Get("metric", "ece");
  // Exact names of the metric table only (no prefix or substring match).
  absl::StatusOr<const calib::Metric*> known =
      calib::ParseMetric(metric, "--metric",
                         /*summarized_only=*/kind == "sweep");
  if (kind != "reliability" && !known.ok()) {
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
    v1::SummarizeSweepRequest req;
    req.set_sweep_id(id);
    req.mutable_at()->set_final(true);
    req.set_split(split);
    v1::SummarizeSweepResponse resp;
    grpc::Status st =
        s.Call(&v1::ExperimentService::Stub::SummarizeSweep, req, &resp);
    if (!st.ok()) return s.Fail(st);
    std::map<std::string, Series> by_method;
    std::optional<double> baseline;
    double xmin = INFINITY, xmax = -INFINITY;
    for (const auto& r : resp.rows()) {
      const v1::MetricStat* stat = nullptr;
      for (const auto& m : r.stats())
        if (m.metric() == metric) stat = &m;
      if (stat == nullptr) continue;
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
      b.label = "baseline";
      b.dashed = true;
      b.x = {xmin, xmax};
      b.y = {*baseline, *baseline};
      series.push_back(b);
    }
    const std::string path =
        p.Get("out", absl::StrCat("sweep", id, "-", metric, "-vs-",
                                  param.empty() ? "value" : param, ".svg"));
    return WriteOutputFile(
               path,
               LinePlot(absl::StrCat("sweep ", id, ": final ", metric, " on ",
                                     split, " (mean ± std over seeds)"),
                        param.empty() ? "hyperparameter value" : param, metric,
                        series),
               p.Get("format", "text"), out, err)
               ? kOk
               : kServerError;
  }
  err << "mixcal: plot KIND must be reliability, curves or sweep, got \""
      << kind << "\"\n";
  return kUsage;
}

}  // namespace mixcal::client
