#include "calib/metric_table.h"

#include "absl/strings/str_cat.h"

namespace mixcal::calib {

const std::vector<Metric>& Metrics() {
  // name, higher is better, summarized, optional, meaning
  static const auto* table = new std::vector<Metric>{
      {"accuracy", true, true, false, "top-1 accuracy"},
      {"ece", false, true, false, "expected calibration error (equal-width bins)"},
      {"oe", false, true, false, "overconfidence error"},
      {"mce", false, true, false, "maximum calibration error"},
      {"nll", false, true, false, "negative log-likelihood"},
      {"brier", false, true, false, "Brier score"},
      {"adaptive_ece", false, true, false, "ECE over equal-mass bins"},
      {"mean_confidence", true, true, false, "mean top-label confidence"},
      {"mean_entropy", false, true, false, "mean predictive entropy"},
      {"temperature", false, true, true, "fitted temperature (test_ts)"},
      {"auroc", true, true, true, "AUROC of in- vs out-of-distribution (noise, ood)"},
      {"train_loss", false, true, false, "mean training loss of the epoch"},
      {"train_accuracy", true, false, false, "training accuracy of the epoch"},
      {"lr", false, false, false, "learning rate of the epoch"},
      {"samples_per_sec", true, false, false, "training examples per second"},
  };
  return *table;
}

const Metric* FindMetric(absl::string_view name) {
  for (const Metric& m : Metrics()) {
    if (name == m.name) return &m;
  }
  return nullptr;
}

std::string MetricNames(bool summarized_only) {
  std::string out;
  for (const Metric& m : Metrics()) {
    if (summarized_only && !m.summarized) continue;
    absl::StrAppend(&out, out.empty() ? "" : "|", m.name);
  }
  return out;
}

absl::StatusOr<const Metric*> ParseMetric(absl::string_view name,
                                          absl::string_view field,
                                          bool summarized_only) {
  const Metric* m = FindMetric(name);
  if (m == nullptr || (summarized_only && !m->summarized)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must be one of ", MetricNames(summarized_only),
                     ", got \"", name.substr(0, 64), "\""));
  }
  return m;
}

}  // namespace mixcal::calib
