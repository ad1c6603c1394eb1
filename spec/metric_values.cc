#include "spec/metric_values.h"

#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace mixcal::spec {

std::optional<double> MetricValue(const v1::EpochMetrics& row,
                                  const calib::Metric& metric) {
  // The table names fields of EpochMetrics; metric_values_test checks that
  // each is a double field there, so a missing one is a programming error.
  const google::protobuf::FieldDescriptor* f =
      v1::EpochMetrics::descriptor()->FindFieldByName(metric.name);
  if (f == nullptr ||
      f->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_DOUBLE) {
    return std::nullopt;
  }
  const google::protobuf::Reflection* r = row.GetReflection();
  if (f->has_presence() && !r->HasField(row, f)) return std::nullopt;
  return r->GetDouble(row, f);
}

}  // namespace mixcal::spec
