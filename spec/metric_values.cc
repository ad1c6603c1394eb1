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

}  // namespace

std::optional<double> MetricValue(const v1::EpochMetrics& row,
                                  const calib::Metric& metric) {
  // `metric` is a row of the table (calib::Metrics() hands out no others).
  // The table names fields of EpochMetrics; metric_values_test checks that
  // each is a double field there, so a missing one is a programming error.
  const std::vector<calib::Metric>& table = calib::Metrics();
  const std::less<const calib::Metric*> before;
  const bool in_table = !before(&metric, table.data()) &&
                        before(&metric, table.data() + table.size());
  const google::protobuf::FieldDescriptor* f =
      in_table ? Fields()[static_cast<size_t>(&metric - table.data())]
               : v1::EpochMetrics::descriptor()->FindFieldByName(metric.name);
  if (f == nullptr ||
      f->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_DOUBLE) {
    return std::nullopt;
  }
  const google::protobuf::Reflection* r = row.GetReflection();
  if (f->has_presence() && !r->HasField(row, f)) return std::nullopt;
  return r->GetDouble(row, f);
}

}  // namespace mixcal::spec
