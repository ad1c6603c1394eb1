#include "spec/metric_values.h"

#include <functional>
#include <vector>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace mixcal::spec {

namespace {

// The field of each metric, in the table's order, looked up once: the store
// reads every metric of every report it validates.
const std::vector<const google::protobuf::FieldDescriptor*>& Fields() {
  static const auto* fields = [] {
    auto* v = new std::vector<const google::protobuf::FieldDescriptor*>;
    for (const calib::Metric& m : calib::Metrics())
      v->push_back(v1::EpochMetrics::descriptor()->FindFieldByName(m.name));
    return v;
  }();
  return *fields;
}

// The metric's double field in EpochMetrics, or null when it has none
// (then it lives in more_metrics).
const google::protobuf::FieldDescriptor* FieldOf(const calib::Metric& metric) {
  // `metric` is a row of the table (calib::Metrics() hands out no others).
  const std::vector<calib::Metric>& table = calib::Metrics();
  const std::less<const calib::Metric*> before;
  const bool in_table = !before(&metric, table.data()) &&
                        before(&metric, table.data() + table.size());
  const google::protobuf::FieldDescriptor* f =
      in_table ? Fields()[static_cast<size_t>(&metric - table.data())]
               : v1::EpochMetrics::descriptor()->FindFieldByName(metric.name);
  if (f == nullptr ||
      f->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_DOUBLE ||
      f->is_repeated()) {
    return nullptr;
  }
  return f;
}

}  // namespace

bool HasField(const calib::Metric& metric) {
  return FieldOf(metric) != nullptr;
}

std::optional<double> MetricValue(const v1::EpochMetrics& row,
                                  const calib::Metric& metric) {
  const google::protobuf::FieldDescriptor* f = FieldOf(metric);
  if (f == nullptr) {
    auto it = row.more_metrics().find(metric.name);
    if (it == row.more_metrics().end()) return std::nullopt;
    return it->second;
  }
  const google::protobuf::Reflection* r = row.GetReflection();
  if (f->has_presence() && !r->HasField(row, f)) return std::nullopt;
  return r->GetDouble(row, f);
}

void SetMetricValue(v1::EpochMetrics* row, const calib::Metric& metric,
                    std::optional<double> value) {
  const google::protobuf::FieldDescriptor* f = FieldOf(metric);
  if (f == nullptr) {
    if (value) {
      (*row->mutable_more_metrics())[metric.name] = *value;
    } else {
      row->mutable_more_metrics()->erase(metric.name);
    }
    return;
  }
  const google::protobuf::Reflection* r = row->GetReflection();
  if (value) {
    r->SetDouble(row, f, *value);
  } else {
    r->ClearField(row, f);
  }
}

calib::MetricValues MetricValuesOf(const v1::EpochMetrics& row) {
  calib::MetricValues values;
  for (const calib::Metric& m : calib::Metrics()) {
    if (std::optional<double> v = MetricValue(row, m)) values.Set(m, *v);
  }
  return values;
}

}  // namespace mixcal::spec
