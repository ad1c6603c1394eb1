#include "worker/report_proto.h"

#include "calib/metric_table.h"
#include "spec/metric_values.h"

namespace mixcal::worker {

std::vector<v1::EpochMetrics> ToProto(const core::EpochReport& r,
                                      int64_t job_id) {
  std::vector<v1::EpochMetrics> out;
  out.reserve(r.splits.size());
  for (const core::SplitMetrics& m : r.splits) {
    v1::EpochMetrics p;
    p.set_job_id(job_id);
    p.set_epoch(static_cast<uint32_t>(r.epoch));
    p.set_split(m.split);
    p.set_count(m.count);
    for (const calib::Metric& metric : calib::Metrics())
      spec::SetMetricValue(&p, metric, m.values.Get(metric));
    p.set_estimators(m.estimators);
    p.set_calibration(m.calibration);
    p.set_wall_seconds(r.train_seconds + r.eval_seconds);
    for (const calib::ReliabilityBin& b : m.bins) {
      v1::ReliabilityBin* pb = p.add_bins();
      pb->set_count(b.count);
      pb->set_confidence_sum(b.confidence_sum);
      pb->set_correct(b.correct);
    }
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace mixcal::worker
