#include "client/figures.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "calib/config.h"
#include "base/status_macros.h"
#include "calib/stats.h"
#include "client/output.h"
#include "client/plot.h"
#include "spec/metric_values.h"

namespace mixcal::client {
namespace {

std::vector<Bin> BinsOf(const v1::GetReliabilityResponse& r) {
  std::vector<Bin> bins;
  for (const auto& b : r.bins())
    bins.push_back({b.count(), b.confidence_sum(), b.correct()});
  return bins;
}

// A split as a caption says it: "test_ts" -> "test, temperature-scaled".
std::string SplitWords(const std::string& split) {
  static const auto* words = new std::map<std::string, std::string>{
      {"test", "test"},
      {"val", "validation"},
      {"test_ts", "test, temperature-scaled"},
      {"val_ts", "validation, temperature-scaled"},
      {"noise", "random noise"},
      {"ood", "unknown inputs"},
      {"train", "training examples"}};
  if (auto it = words->find(split); it != words->end()) return it->second;
  if (split.rfind("test_", 0) == 0)
    return absl::StrCat("test, calibrated (", split.substr(5), ")");
  return split;
}

// "NAME (sweep N)" for titles; "sweep N" when the name cannot be read.
std::string SweepTitle(Session& s, int64_t sweep) {
  v1::GetSweepRequest req;
  req.set_sweep_id(sweep);
  v1::Sweep out;
  if (!s.Call(&v1::ExperimentService::Stub::GetSweep, req, &out).ok() ||
      out.name().empty())
    return absl::StrCat("sweep ", sweep);
  return absl::StrCat(out.name(), " (sweep ", sweep, ")");
}

bool NeedsNoLabels(const std::string& metric) {
  return metric == "mean_confidence" || metric == "mean_entropy" ||
         metric == "auroc" || metric == "aupr" || metric == "fpr95";
}

}  // namespace

absl::Status FromGrpc(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      s.error_message());
}

// One job, or the coordinator's error ("no job N").
absl::StatusOr<v1::Job> ReadJob(Session& s, int64_t id) {
  v1::GetJobRequest req;
  req.set_job_id(id);
  v1::Job job;
  grpc::Status st = s.Call(&v1::ExperimentService::Stub::GetJob, req, &job);
  if (!st.ok()) return FromGrpc(st);
  return job;
}

absl::StatusOr<Figure> ReliabilityFigure(Session& s, int64_t job,
                                         uint32_t epoch,
                                         const std::string& split) {
  v1::GetReliabilityRequest req;
  req.set_job_id(job);
  req.set_epoch(epoch);
  req.set_split(split);
  v1::GetReliabilityResponse r;
  grpc::Status st =
      s.Call(&v1::ExperimentService::Stub::GetReliability, req, &r);
  if (!st.ok()) return FromGrpc(st);
  // The title names the method, its seed and the sweep, as a caption would.
  std::string title = absl::StrCat("job ", job, ", epoch ", r.epoch(), ", ",
                                   SplitWords(split));
  if (absl::StatusOr<v1::Job> read = ReadJob(s, job); read.ok()) {
    const v1::Job& j = *read;
    title = absl::StrCat(MethodLabel(j.method(), j.value()), ", seed ",
                         j.seed(), ": epoch ", r.epoch(), ", ",
                         SplitWords(split), "\n",
                         SweepTitle(s, j.sweep_id()), ", job ", job);
  }
  return Figure{ReliabilityPlot(title,
                                BinsOf(r), r.ece(), r.mce(), r.oe()),
                absl::StrCat("reliability-job", job, "-epoch", r.epoch(), "-",
                             split, ".svg")};
}

absl::StatusOr<Figure> CurvesFigure(Session& s, int64_t sweep, int64_t job,
                                    const calib::Metric& metric,
                                    const std::string& split) {
  v1::QueryMetricsRequest req;
  if (job > 0) {
    req.mutable_filter()->add_job_ids(job);
  } else {
    req.mutable_filter()->set_sweep_id(sweep);
    req.mutable_filter()->set_split(split);
  }
  req.mutable_filter()->set_page_size(10000);
  // series label -> epoch -> values over seeds
  std::map<std::string, std::map<uint32_t, std::vector<double>>> groups;
  std::vector<std::string> order;
  std::map<std::string, std::pair<std::string, double>> method_of;
  grpc::Status st =
      s.ForEachMetricsPage(req, [&](const v1::QueryMetricsResponse& resp) {
        for (const auto& m : resp.rows()) {
          std::optional<double> v = spec::MetricValue(m, metric);
          if (!v) continue;
          // Noise and unknown-class inputs have no labels: only their
          // confidence-based metrics mean something.
          if (job > 0 && (m.split() == "noise" || m.split() == "ood") &&
              !NeedsNoLabels(metric.name))
            continue;
          const std::string key =
              job > 0 ? SplitWords(m.split())
                      : MethodLabel(m.method(), m.value());
          if (!groups.count(key)) order.push_back(key);
          method_of[key] = {m.method(), m.value()};
          groups[key][m.epoch()].push_back(*v);
        }
      });
  if (!st.ok()) return FromGrpc(st);
  if (groups.empty()) {
    // A sweep or job that does not exist is said so, not "no ECE yet".
    if (job > 0) {
      MIXCAL_RETURN_IF_ERROR(ReadJob(s, job).status());
    } else {
      v1::GetSweepRequest sreq;
      sreq.set_sweep_id(sweep);
      v1::Sweep sw;
      st = s.Call(&v1::ExperimentService::Stub::GetSweep, sreq, &sw);
    }
    if (!st.ok()) return FromGrpc(st);
    return absl::NotFoundError(
        job > 0 ? absl::StrCat("job ", job, " has no ", metric.name, " yet")
                : absl::StrCat("sweep ", sweep, " has no ", metric.name,
                               " on split ", split, " yet"));
  }
  // Each method its colour in every figure; its values shades of it.
  std::map<std::string, std::vector<double>> values_of;
  for (const auto& [key, mv] : method_of) values_of[mv.first].push_back(mv.second);
  for (auto& [method, values] : values_of) std::sort(values.begin(), values.end());
  std::vector<Series> series;
  for (const std::string& key : order) {
    Series sr;
    sr.label = key;
    if (job == 0) {
      const auto& [method, value] = method_of[key];
      const std::vector<double>& vals = values_of[method];
      const int rank = static_cast<int>(
          std::lower_bound(vals.begin(), vals.end(), value) - vals.begin());
      sr.color = MethodColor(method, rank, static_cast<int>(vals.size()));
      sr.dashed = method == "baseline";
    }
    for (const auto& [epoch, values] : groups[key]) {
      const calib::MeanStd ms = calib::MeanAndStd(values);
      sr.x.push_back(epoch);
      sr.y.push_back(ms.mean);
      if (job == 0) {
        sr.lo.push_back(ms.mean - ms.std);
        sr.hi.push_back(ms.mean + ms.std);
      }
    }
    series.push_back(std::move(sr));
  }
  if (job > 0) {
    return Figure{LinePlot(absl::StrCat("job ", job, ": ",
                                        MetricLabel(metric.name), " per split"),
                           "epoch", MetricLabel(metric.name), series),
                  absl::StrCat("curves-job", job, "-", metric.name, ".svg")};
  }
  return Figure{LinePlot(absl::StrCat(SweepTitle(s, sweep), ": ",
                                      MetricLabel(metric.name), " on ", SplitWords(split),
                                      " (mean ± std over seeds)"),
                         "epoch", MetricLabel(metric.name), series),
                absl::StrCat("curves-sweep", sweep, "-", metric.name, ".svg")};
}

absl::StatusOr<Figure> JobsCurvesFigure(Session& s,
                                        const std::vector<int64_t>& jobs,
                                        const calib::Metric& metric,
                                        const std::string& split) {
  std::vector<Series> series;
  for (int64_t id : jobs) {
    MIXCAL_ASSIGN_OR_RETURN(const v1::Job job, ReadJob(s, id));
    v1::QueryMetricsRequest req;
    req.mutable_filter()->add_job_ids(id);
    req.mutable_filter()->set_split(split);
    req.mutable_filter()->set_page_size(10000);
    Series sr;
    sr.label = absl::StrCat("job ", id, ": ",
                            MethodLabel(job.method(), job.value()), ", seed ",
                            job.seed());
    sr.color = MethodColor(job.method());
    sr.dashed = job.seed() % 2 == 1;  // two seeds of one method apart
    grpc::Status st =
        s.ForEachMetricsPage(req, [&](const v1::QueryMetricsResponse& r) {
      for (const auto& m : r.rows()) {
        std::optional<double> v = spec::MetricValue(m, metric);
        if (!v) continue;
        sr.x.push_back(m.epoch());
        sr.y.push_back(*v);
      }
    });
    if (!st.ok()) return FromGrpc(st);
    if (!sr.x.empty()) series.push_back(std::move(sr));
  }
  if (series.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "the chosen jobs have no ", metric.name, " on split ", split, " yet"));
  }
  return Figure{LinePlot(absl::StrCat(MetricLabel(metric.name), " on ", SplitWords(split),
                                      ": ", jobs.size(), " jobs compared"),
                         "epoch", MetricLabel(metric.name), series),
                absl::StrCat("curves-jobs-", metric.name, ".svg")};
}

absl::StatusOr<Figure> JobsReliabilityFigure(Session& s,
                                             const std::vector<int64_t>& jobs,
                                             uint32_t epoch,
                                             const std::string& split) {
  std::vector<Series> series;
  Series diagonal;
  diagonal.label = "perfect calibration";
  diagonal.x = {0, 1};
  diagonal.y = {0, 1};
  diagonal.dashed = true;
  diagonal.color = "#888888";
  series.push_back(diagonal);
  for (int64_t id : jobs) {
    MIXCAL_ASSIGN_OR_RETURN(const v1::Job job, ReadJob(s, id));
    v1::GetReliabilityRequest req;
    req.set_job_id(id);
    req.set_epoch(epoch);
    req.set_split(split);
    v1::GetReliabilityResponse r;
    grpc::Status st =
        s.Call(&v1::ExperimentService::Stub::GetReliability, req, &r);
    if (st.error_code() == grpc::StatusCode::NOT_FOUND) continue;  // none yet
    if (!st.ok()) return FromGrpc(st);
    Series sr;
    sr.label = absl::StrFormat("job %d: %s, seed %d, epoch %d (ECE %.3f)", id,
                               MethodLabel(job.method(), job.value()),
                               job.seed(), r.epoch(), r.ece());
    sr.color = MethodColor(job.method());
    sr.dashed = job.seed() % 2 == 1;
    sr.markers = false;
    for (const Bin& b : BinsOf(r)) {
      if (b.count == 0) continue;
      sr.x.push_back(b.confidence_sum / b.count);
      sr.y.push_back(static_cast<double>(b.correct) / b.count);
    }
    if (!sr.x.empty()) series.push_back(std::move(sr));
  }
  if (series.size() == 1) {
    return absl::NotFoundError(absl::StrCat(
        "the chosen jobs have no reliability bins on split ", split, " yet"));
  }
  return Figure{LinePlot(absl::StrCat("reliability on ", SplitWords(split), ": ",
                                      series.size() - 1, " jobs compared"),
                         "confidence", "accuracy", series),
                "reliability-jobs.svg"};
}

absl::StatusOr<Figure> SweepFigure(Session& s, int64_t sweep,
                                   const calib::Metric& metric,
                                   const std::string& param,
                                   const std::string& split,
                                   const std::string& vs) {
  std::set<std::string> methods;
  for (calib::MethodKind m : calib::MethodsWithHyperparameter(param))
    methods.insert(std::string(calib::Name(m)));
  v1::SummarizeSweepRequest req;
  req.set_sweep_id(sweep);
  req.mutable_at()->set_final(true);
  req.set_split(split);
  req.set_vs(vs);
  v1::SummarizeSweepResponse resp;
  grpc::Status st =
      s.Call(&v1::ExperimentService::Stub::SummarizeSweep, req, &resp);
  if (!st.ok()) return FromGrpc(st);
  std::map<std::string, Series> by_method;
  std::optional<double> baseline;
  std::string vs_label;
  double xmin = INFINITY, xmax = -INFINITY;
  for (const auto& r : resp.rows()) {
    const v1::MetricStat* stat = nullptr;
    for (const auto& m : r.stats())
      if (m.metric() == metric.name) stat = &m;
    if (stat == nullptr) continue;
    double y, lo, hi;
    if (!vs.empty()) {
      // The paired difference to the reference, with its 95% interval; the
      // reference itself is the zero line.
      if (r.method() == r.vs_method() && r.value() == r.vs_value()) {
        vs_label = MethodLabel(r.vs_method(), r.vs_value());
        baseline = 0;
        continue;
      }
      if (!stat->has_vs() || r.method() == "baseline") continue;
      const v1::PairedComparison& c = stat->vs();
      y = c.mean();
      // One pair has no interval: the point alone.
      lo = std::isfinite(c.low()) ? c.low() : c.mean();
      hi = std::isfinite(c.high()) ? c.high() : c.mean();
    } else {
      if (r.method() == "baseline") {
        baseline = stat->mean();
        continue;
      }
      y = stat->mean();
      lo = y - stat->std();
      hi = y + stat->std();
    }
    if (!methods.empty() && !methods.count(r.method())) continue;
    Series& sr = by_method[r.method()];
    sr.label = r.method();
    sr.color = MethodColor(r.method());
    sr.markers = true;
    sr.x.push_back(r.value());
    sr.y.push_back(y);
    sr.lo.push_back(lo);
    sr.hi.push_back(hi);
    xmin = std::min(xmin, r.value());
    xmax = std::max(xmax, r.value());
  }
  if (by_method.empty()) {
    return absl::NotFoundError(
        absl::StrCat("sweep ", sweep, " has no finished ",
                     param.empty() ? "method with values" : param,
                     " to plot"));
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
    b.color = MethodColor("baseline");
    // One value: the plot pads the x range by 0.5 each side; span it.
    b.x = xmax - xmin < 1e-12 ? std::vector<double>{xmin - 0.5, xmax + 0.5}
                              : std::vector<double>{xmin, xmax};
    b.y = {*baseline, *baseline};
    series.push_back(b);
  }
  const std::string x_label = param.empty() ? "hyperparameter value" : param;
  const std::string name =
      absl::StrCat("sweep", sweep, "-", metric.name, vs.empty() ? "" : "-diff",
                   "-vs-", param.empty() ? "value" : param, ".svg");
  if (vs.empty()) {
    return Figure{LinePlot(absl::StrCat(SweepTitle(s, sweep), ": final ",
                                        MetricLabel(metric.name), " on ", SplitWords(split),
                                        " (mean ± std over seeds)"),
                           x_label, MetricLabel(metric.name), series),
                  name};
  }
  return Figure{LinePlot(absl::StrCat(SweepTitle(s, sweep), ": final ",
                                      MetricLabel(metric.name), " on ", SplitWords(split),
                                      " minus ", vs_label,
                                      " (paired by seed, 95% CI)"),
                         x_label,
                         absl::StrCat(MetricLabel(metric.name), " difference"),
                         series),
                name};
}

absl::StatusOr<Figure> EvolutionFigure(Session& s,
                                       const std::vector<int64_t>& jobs,
                                       const std::vector<uint32_t>& epochs,
                                       const std::string& split) {
  std::vector<EvolutionRow> rows;
  for (int64_t job_id : jobs) {
    MIXCAL_ASSIGN_OR_RETURN(const v1::Job job, ReadJob(s, job_id));
    if (job.last_epoch() == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("job ", job_id, " has no epochs stored yet"));
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
      grpc::Status st =
          s.Call(&v1::ExperimentService::Stub::GetReliability, req, &r);
      if (!st.ok()) {
        absl::Status err = FromGrpc(st);
        if (st.error_code() == grpc::StatusCode::NOT_FOUND && split == "train") {
          return absl::NotFoundError(absl::StrCat(
              st.error_message(),
              " (split train exists when the sweep sets "
              "evaluation.trainEvalCount; --split test shows the test set)"));
        }
        return err;
      }
      EvolutionPanel panel;
      panel.epoch = r.epoch();
      panel.ece = r.ece();
      panel.oe = r.oe();
      panel.bins = BinsOf(r);
      row.panels.push_back(std::move(panel));
    }
    rows.push_back(std::move(row));
  }
  return Figure{EvolutionPlot(absl::StrCat("reliability on ", SplitWords(split),
                                           " across training (bubble: a "
                                           "confidence bin)"),
                              rows),
                absl::StrCat("evolution-job", jobs.front(), "-", split, ".svg")};
}

}  // namespace mixcal::client
