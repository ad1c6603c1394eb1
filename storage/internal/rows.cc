#include "storage/internal/rows.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/utf8.h"
#include "calib/metric_table.h"
#include "spec/metric_values.h"

namespace mixcal::storage {

const char kJobColumns[] =
    "id, sweep_id, method, value, seed, config, state, priority, device, "
    "attempt, "
    "max_attempts, COALESCE(worker_id, 0), lease_expires_at, checkpoint, "
    "checkpoint_epoch, "
    "last_epoch, error, created_at, started_at, finished_at, handbacks, data";

absl::StatusOr<v1::Job> JobFromRow(const Statement& s) {
  v1::Job j;
  j.set_id(s.Int(0));
  j.set_sweep_id(s.Int(1));
  j.set_method(s.Text(2));
  j.set_value(s.Double(3));
  j.set_seed(static_cast<uint64_t>(s.Int(4)));
  if (!j.mutable_config()->ParseFromString(s.Blob(5))) {
    return absl::DataLossError(
        absl::StrCat("job ", j.id(),
                     ": its stored config cannot be parsed (the store file "
                     "is damaged)"));
  }
  j.set_state(static_cast<v1::JobState>(s.Int(6)));
  j.set_priority(static_cast<int32_t>(s.Int(7)));
  j.set_device(s.Text(8));
  j.set_attempt(static_cast<uint32_t>(s.Int(9)));
  j.set_max_attempts(static_cast<uint32_t>(s.Int(10)));
  j.set_worker_id(s.Int(11));
  j.set_lease_expires_at_us(s.Int(12));
  j.set_checkpoint(s.Text(13));
  j.set_checkpoint_epoch(static_cast<uint32_t>(s.Int(14)));
  j.set_last_epoch(static_cast<uint32_t>(s.Int(15)));
  j.set_error(s.Text(16));
  j.set_created_at_us(s.Int(17));
  j.set_started_at_us(s.Int(18));
  j.set_finished_at_us(s.Int(19));
  j.set_handbacks(static_cast<uint32_t>(s.Int(20)));
  j.set_data(s.Text(21));
  return j;
}

const std::string& MetricColumnNames() {
  static const auto* names = [] {
    auto* out = new std::string;
    for (const calib::Metric& m : calib::Metrics())
      absl::StrAppend(out, out->empty() ? "" : ", ", m.name);
    return out;
  }();
  return *names;
}

const std::string& MetricColumns() {
  static const auto* sql = [] {
    auto* out = new std::string(
        "m.job_id, m.epoch, m.split, m.count, m.wall_seconds, j.method, "
        "j.value, j.seed, m.estimators, m.calibration");
    for (const calib::Metric& m : calib::Metrics())
      absl::StrAppend(out, ", m.", m.name);
    return out;
  }();
  return *sql;
}

v1::EpochMetrics MetricsFromRow(const Statement& s) {
  v1::EpochMetrics m;
  m.set_job_id(s.Int(0));
  m.set_epoch(static_cast<uint32_t>(s.Int(1)));
  m.set_split(s.Text(2));
  m.set_count(s.Int(3));
  m.set_wall_seconds(s.Double(4));
  m.set_method(s.Text(5));
  m.set_value(s.Double(6));
  m.set_seed(static_cast<uint64_t>(s.Int(7)));
  m.set_estimators(s.Text(8));
  m.set_calibration(s.Text(9));
  ReadMetricValues(s, 10, &m);
  return m;
}

void BindMetricValues(Statement& s, int first, const v1::EpochMetrics& m) {
  int i = first;
  for (const calib::Metric& metric : calib::Metrics())
    s.Bind(i++, spec::MetricValue(m, metric));
}

void ReadMetricValues(const Statement& s, int first, v1::EpochMetrics* m) {
  int i = first;
  for (const calib::Metric& metric : calib::Metrics()) {
    if (!s.IsNull(i)) spec::SetMetricValue(m, metric, s.Double(i));
    ++i;
  }
}

bool ValidSplitName(const std::string& s) {
  if (s.empty() || s.size() > 32) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

absl::StatusOr<std::string> SplitOrTest(const std::string& split) {
  const std::string s = split.empty() ? "test" : split;
  if (!ValidSplitName(s)) {
    return absl::InvalidArgumentError(
        absl::StrCat("split \"", Echo(s), "\" is not a split name"));
  }
  return s;
}

std::string WorkerDeviceClass(const std::string& device) {
  return device.rfind("cuda", 0) == 0 ? "cuda" : "cpu";
}

}  // namespace mixcal::storage
