#include "calib/metric_table.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>

#include "absl/strings/str_cat.h"

namespace mixcal::calib {

namespace {

std::vector<Metric>& Table() {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  // name, higher is better, summarized, optional, meaning, min, max.
  // train_loss may be negative: ERL subtracts beta times the entropy.
  static auto* table = new std::vector<Metric>{
      {"accuracy", true, true, false, "top-1 accuracy", 0, 1},
      {"ece", false, true, false,
       "expected calibration error (equal-width bins)", 0, 1},
      {"oe", false, true, false, "overconfidence error", 0, 1},
      {"mce", false, true, false, "maximum calibration error", 0, 1},
      {"nll", false, true, false, "negative log-likelihood", 0, kInf},
      {"brier", false, true, false, "Brier score", 0, 2},
      {"adaptive_ece", false, true, false, "ECE over equal-mass bins", 0, 1},
      {"mean_confidence", true, true, false, "mean top-label confidence", 0, 1},
      {"mean_entropy", false, true, false, "mean predictive entropy", 0, kInf},
      {"temperature", false, true, true, "fitted temperature (test_ts)", 0,
       kInf},
      {"auroc", true, true, true,
       "AUROC of in- vs out-of-distribution (noise, ood)", 0, 1},
      {"classwise_ece", false, true, true,
       "classwise (marginal) ECE, equal-width bins", 0, 1},
      {"l2_ce_debiased", false, true, true,
       "debiased L2 calibration error (Kumar et al.)", 0, 1},
      {"brier_reliability", false, true, true,
       "top-label Brier decomposition: reliability", 0, 1},
      {"brier_resolution", true, true, true,
       "top-label Brier decomposition: resolution", 0, 1},
      {"brier_uncertainty", false, true, true,
       "top-label Brier decomposition: uncertainty", 0, 1},
      {"aurc", false, true, true, "area under the risk-coverage curve", 0, 1},
      {"ece_low", false, true, true, "ECE 95% bootstrap interval, low end", 0,
       1},
      {"ece_high", false, true, true, "ECE 95% bootstrap interval, high end", 0,
       1},
      {"mmce", false, true, true,
       "maximum mean calibration error (Kumar et al.)", 0, 1},
      {"tace", false, true, true, "thresholded adaptive ECE (Nixon et al.)", 0,
       1},
      {"rmsce", false, true, true,
       "root-mean-square (L2) calibration error, equal-width bins", 0, 1},
      {"smece", false, true, true,
       "smooth ECE, reflected Gaussian kernel (Blasiok & Nakkiran)", 0, 1},
      {"fpr95", false, true, true, "FPR at 95% TPR, test vs noise/ood", 0, 1},
      {"aupr", true, true, true, "AUPR, test (positive) vs noise/ood", 0, 1},
      {"train_loss", false, true, false, "mean training loss of the epoch",
       -kInf, kInf},
      {"train_accuracy", true, false, false, "training accuracy of the epoch",
       0, 1},
      {"lr", false, false, false, "learning rate of the epoch", 0, kInf},
      {"samples_per_sec", true, false, false, "training examples per second", 0,
       kInf},
  };
  return *table;
}

// The position of `metric` in the table; programming errors stop here.
size_t IndexOf(const Metric& metric) {
  const std::vector<Metric>& table = Table();
  const std::less<const Metric*> before;
  if (before(&metric, table.data()) ||
      !before(&metric, table.data() + table.size())) {
    std::fprintf(stderr, "metric %s is not a row of calib::Metrics()\n",
                 metric.name);
    std::abort();
  }
  return static_cast<size_t>(&metric - table.data());
}

const Metric& Named(absl::string_view name) {
  const Metric* m = FindMetric(name);
  if (m == nullptr) {
    std::fprintf(stderr, "no metric %.*s in calib::Metrics()\n",
                 static_cast<int>(name.size()), name.data());
    std::abort();
  }
  return *m;
}

}  // namespace

const std::vector<Metric>& Metrics() { return Table(); }

absl::Status RegisterMetric(Metric metric) {
  const absl::string_view name = metric.name == nullptr ? "" : metric.name;
  const bool word =
      !name.empty() && name.size() <= 48 &&
      std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
      });
  if (!word) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metric name must be 1 to 48 of [a-z0-9_], got \"", name, "\""));
  }
  if (FindMetric(name) != nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("metric ", name, " is in the table already"));
  }
  if (!(metric.min <= metric.max)) {
    return absl::InvalidArgumentError(
        absl::StrCat("metric ", name, ": min must be at most max"));
  }
  std::vector<Metric>& table = Table();
  auto at = table.end();
  if (metric.summarized) {
    at = std::find_if(table.begin(), table.end(),
                      [](const Metric& m) { return !m.summarized; });
  }
  table.insert(at, std::move(metric));
  return absl::OkStatus();
}

void MetricValues::Set(absl::string_view name, double value) {
  Set(Named(name), value);
}

void MetricValues::Set(const Metric& metric, double value) {
  const size_t i = IndexOf(metric);
  if (values_.size() <= i) values_.resize(Metrics().size());
  values_[i] = value;
}

std::optional<double> MetricValues::Get(absl::string_view name) const {
  return Get(Named(name));
}

std::optional<double> MetricValues::Get(const Metric& metric) const {
  const size_t i = IndexOf(metric);
  return i < values_.size() ? values_[i] : std::nullopt;
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
