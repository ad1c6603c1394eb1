#include "spec/metric_values.h"

#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"

namespace mixcal::spec {
namespace {

TEST(MetricValuesTest, EveryTableMetricIsADoubleFieldOfEpochMetrics) {
  for (const calib::Metric& m : calib::Metrics()) {
    const auto* f = v1::EpochMetrics::descriptor()->FindFieldByName(m.name);
    ASSERT_NE(f, nullptr) << m.name;
    EXPECT_EQ(f->cpp_type(), google::protobuf::FieldDescriptor::CPPTYPE_DOUBLE)
        << m.name;
    EXPECT_EQ(f->has_presence(), m.optional) << m.name;
  }
}

TEST(MetricValuesTest, ReadsTheNamedFieldAndAbsentOptionals) {
  v1::EpochMetrics row;
  row.set_ece(0.125);
  row.set_accuracy(0.75);
  row.set_samples_per_sec(1234);
  EXPECT_EQ(MetricValue(row, *calib::FindMetric("ece")), 0.125);
  EXPECT_EQ(MetricValue(row, *calib::FindMetric("accuracy")), 0.75);
  EXPECT_EQ(MetricValue(row, *calib::FindMetric("samples_per_sec")), 1234);
  EXPECT_EQ(MetricValue(row, *calib::FindMetric("mce")), 0.0);
  EXPECT_FALSE(MetricValue(row, *calib::FindMetric("temperature")));
  row.set_temperature(1.5);
  EXPECT_EQ(MetricValue(row, *calib::FindMetric("temperature")), 1.5);
}

}  // namespace
}  // namespace mixcal::spec
