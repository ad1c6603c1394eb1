#include "worker/reports.h"

#include <utility>

#include "calib/metric_table.h"
#include "spec/metric_values.h"

namespace mixcal::worker {
namespace {

// One split's row: every metric of calib's table by its name
// (spec/metric_values.h), with the split's reliability bins.
v1::EpochMetrics ToProto(const core::EpochReport& r,
                         const core::SplitMetrics& m, int64_t job_id) {
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
  return p;
}

}  // namespace

v1::WorkerReport EpochReport(const core::EpochReport& r,
                             const v1::Lease& lease) {
  v1::WorkerReport report;
  v1::ReportEpochRequest* req = report.mutable_epoch();
  *req->mutable_lease() = lease;
  for (const core::SplitMetrics& m : r.splits)
    *req->add_metrics() = ToProto(r, m, lease.job_id());
  for (const core::KeptPredictions& k : r.predictions) {
    v1::Predictions* p = req->add_predictions();
    p->set_job_id(lease.job_id());
    p->set_epoch(static_cast<uint32_t>(r.epoch));
    p->set_split(k.split);
    p->set_count(static_cast<uint32_t>(k.count));
    p->set_classes(static_cast<uint32_t>(k.classes));
    p->set_probabilities(k.probabilities);
    p->set_labels(k.labels);
    p->set_label_log_probs(k.label_log_probs);
  }
  req->set_data(r.data);
  return report;
}

v1::WorkerReport CheckpointReport(int epoch, const std::string& relative_path,
                                  const v1::Lease& lease) {
  v1::WorkerReport report;
  v1::ReportCheckpointRequest* req = report.mutable_checkpoint();
  *req->mutable_lease() = lease;
  req->set_epoch(static_cast<uint32_t>(epoch));
  req->set_path(relative_path);
  return report;
}

}  // namespace mixcal::worker
