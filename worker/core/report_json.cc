#include "worker/core/report_json.h"

#include <cmath>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "calib/metric_table.h"

namespace mixcal::core {
namespace {

std::string Num(double v) {
  if (!std::isfinite(v)) return "null";
  return absl::StrFormat("%.9g", v);
}

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace

std::vector<std::string> EpochReportJsonLines(const EpochReport& r) {
  std::vector<std::string> lines;
  for (const SplitMetrics& m : r.splits) {
    std::string line =
        absl::StrCat("{\"epoch\":", r.epoch, ",\"split\":", Quote(m.split),
                     ",\"count\":", m.count);
    // Every metric of the table by its name: an optional one only where
    // the split has it, the others null where it has none (no labels).
    for (const calib::Metric& metric : calib::Metrics()) {
      const std::optional<double> v = m.values.Get(metric);
      if (v || !metric.optional)
        absl::StrAppend(&line, ",\"", metric.name, "\":", v ? Num(*v) : "null");
    }
    // The fitted calibrator is JSON already.
    if (!m.calibration.empty())
      absl::StrAppend(&line, ",\"calibration\":", m.calibration);
    absl::StrAppend(&line, ",\"train_seconds\":", Num(r.train_seconds),
                    ",\"eval_seconds\":", Num(r.eval_seconds),
                    ",\"metrics_seconds\":", Num(r.metrics_seconds),
                    ",\"bins\":[");
    for (size_t i = 0; i < m.bins.size(); ++i) {
      const calib::ReliabilityBin& b = m.bins[i];
      absl::StrAppend(&line, i ? "," : "", "{\"count\":", b.count,
                      ",\"confidence_sum\":", Num(b.confidence_sum),
                      ",\"correct\":", b.correct, "}");
    }
    line += "]}";
    lines.push_back(std::move(line));
  }
  return lines;
}

}  // namespace mixcal::core
