#include "worker/core/report_json.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

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
    auto labelled = [&](double v) { return m.has_labels ? Num(v) : "null"; };
    std::string line = absl::StrCat(
        "{\"epoch\":", r.epoch, ",\"split\":", Quote(m.split),
        ",\"count\":", m.count, ",\"accuracy\":", labelled(m.accuracy),
        ",\"nll\":", labelled(m.nll), ",\"brier\":", labelled(m.brier),
        ",\"ece\":", labelled(m.ece), ",\"mce\":", labelled(m.mce),
        ",\"oe\":", labelled(m.oe),
        ",\"adaptive_ece\":", labelled(m.adaptive_ece),
        ",\"mean_confidence\":", Num(m.mean_confidence),
        ",\"mean_entropy\":", Num(m.mean_entropy));
    if (m.temperature)
      absl::StrAppend(&line, ",\"temperature\":", Num(*m.temperature));
    if (m.auroc) absl::StrAppend(&line, ",\"auroc\":", Num(*m.auroc));
    for (const auto& [name, v] :
         {std::pair{"classwise_ece", m.classwise_ece},
          {"l2_ce_debiased", m.l2_ce_debiased},
          {"brier_reliability", m.brier_reliability},
          {"brier_resolution", m.brier_resolution},
          {"brier_uncertainty", m.brier_uncertainty},
          {"aurc", m.aurc},
          {"ece_low", m.ece_low},
          {"ece_high", m.ece_high},
          {"mmce", m.mmce},
          {"tace", m.tace},
          {"rmsce", m.rmsce},
          {"smece", m.smece},
          {"fpr95", m.fpr95},
          {"aupr", m.aupr}}) {
      if (v) absl::StrAppend(&line, ",\"", name, "\":", Num(*v));
    }
    // The fitted calibrator is JSON already.
    if (!m.calibration.empty())
      absl::StrAppend(&line, ",\"calibration\":", m.calibration);
    absl::StrAppend(&line, ",\"train_loss\":", Num(r.train_loss),
                    ",\"train_accuracy\":", Num(r.train_accuracy),
                    ",\"lr\":", Num(r.lr),
                    ",\"samples_per_sec\":", Num(r.samples_per_sec),
                    ",\"train_seconds\":", Num(r.train_seconds),
                    ",\"eval_seconds\":", Num(r.eval_seconds),
                    ",\"metrics_seconds\":", Num(r.metrics_seconds), ",\"bins\":[");
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
