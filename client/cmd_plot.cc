#include "client/commands.h"

#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "calib/config.h"
#include "calib/metric_table.h"
#include "client/figures.h"
#include "client/output.h"

namespace mixcal::client {
namespace {

// Writes the figure (to --out, else its own name) or reports the failure
// the way every command does.
int Emit(const absl::StatusOr<Figure>& fig, const Parsed& p, Session& s,
         std::ostream& out, std::ostream& err) {
  if (!fig.ok()) {
    return s.Fail(grpc::Status(
        static_cast<grpc::StatusCode>(fig.status().code()),
        std::string(fig.status().message())));
  }
  return WriteOutputFile(p.Get("out", fig->name), fig->svg,
                         p.Get("format", "text"), out, err)
             ? kOk
             : kServerError;
}

// Comma-separated positive numbers, at most `max` of them.
template <typename T>
bool ParseList(const std::string& flag, const std::string& text, size_t max,
               std::vector<T>* out, std::ostream& err) {
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    T v;
    if (!absl::SimpleAtoi(part, &v) || v <= 0) {
      err << "mixcal: --" << flag
          << " must be a list of positive numbers such as 1,5,10,30, got \""
          << text << "\"\n";
      return false;
    }
    out->push_back(v);
  }
  if (out->size() > max) {
    err << "mixcal: --" << flag << " takes at most " << max << " values, got "
        << out->size() << "\n";
    return false;
  }
  return true;
}

}  // namespace

int Plot(const Parsed& p, Session& s, std::ostream& out, std::ostream& err,
         bool) {
  const std::string kind = p.positional[0];
  const bool per_job = kind == "reliability" || kind == "evolution";
  if (!per_job && kind != "curves" && kind != "sweep") {
    err << "mixcal: plot KIND must be reliability, evolution, curves or "
           "sweep, got \""
        << kind << "\"\n";
    return kUsage;
  }
  int64_t id;
  if (!ParseId(per_job ? "JOB" : "SWEEP", p.positional[1], &id, err))
    return kUsage;
  if (kind == "evolution") {
    std::vector<int64_t> jobs = {id};
    std::vector<uint32_t> epochs;
    if (p.Has("with") && !ParseList("with", p.Get("with"), 7, &jobs, err))
      return kUsage;
    if (p.Has("epochs") && !ParseList("epochs", p.Get("epochs"), 12, &epochs, err))
      return kUsage;
    return Emit(EvolutionFigure(s, jobs, epochs, p.Get("split", "train")), p,
                s, out, err);
  }
  const std::string split = p.Get("split", "test");
  if (kind == "reliability") {
    uint32_t epoch = 0;
    if (p.Has("epoch") &&
        (!absl::SimpleAtoi(p.Get("epoch"), &epoch) || epoch == 0)) {
      err << "mixcal: --epoch must be a positive number, got \""
          << p.Get("epoch") << "\"\n";
      return kUsage;
    }
    return Emit(ReliabilityFigure(s, id, epoch, split), p, s, out, err);
  }
  // Exact names of the metric table only (no prefix or substring match).
  absl::StatusOr<const calib::Metric*> metric =
      calib::ParseMetric(p.Get("metric", "ece"), "--metric",
                         /*summarized_only=*/kind == "sweep");
  if (!metric.ok()) {
    err << "mixcal: " << metric.status().message() << "\n";
    return kUsage;
  }
  if (kind == "curves")
    return Emit(CurvesFigure(s, id, 0, **metric, split), p, s, out, err);
  const std::string param = p.Get("param");
  if (!param.empty() && calib::MethodsWithHyperparameter(param).empty()) {
    err << "mixcal: --param must be one of " << calib::HyperparameterNames()
        << ", got \"" << param << "\"\n";
    return kUsage;
  }
  return Emit(SweepFigure(s, id, **metric, param, split, p.Get("vs")), p, s,
              out, err);
}

}  // namespace mixcal::client
