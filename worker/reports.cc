#include "worker/reports.h"

#include <utility>

namespace mixcal::worker {
namespace {

v1::EpochMetrics ToProto(const core::EpochReport& r,
                         const core::SplitMetrics& m, int64_t job_id) {
  v1::EpochMetrics p;
  p.set_job_id(job_id);
  p.set_epoch(static_cast<uint32_t>(r.epoch));
  p.set_split(m.split);
  p.set_count(m.count);
  p.set_accuracy(m.accuracy);
  p.set_nll(m.nll);
  p.set_brier(m.brier);
  p.set_ece(m.ece);
  p.set_mce(m.mce);
  p.set_oe(m.oe);
  p.set_adaptive_ece(m.adaptive_ece);
  p.set_mean_confidence(m.mean_confidence);
  p.set_mean_entropy(m.mean_entropy);
  if (m.auroc) p.set_auroc(*m.auroc);
  if (m.temperature) p.set_temperature(*m.temperature);
  if (m.classwise_ece) p.set_classwise_ece(*m.classwise_ece);
  if (m.l2_ce_debiased) p.set_l2_ce_debiased(*m.l2_ce_debiased);
  if (m.brier_reliability) p.set_brier_reliability(*m.brier_reliability);
  if (m.brier_resolution) p.set_brier_resolution(*m.brier_resolution);
  if (m.brier_uncertainty) p.set_brier_uncertainty(*m.brier_uncertainty);
  if (m.aurc) p.set_aurc(*m.aurc);
  if (m.ece_low) p.set_ece_low(*m.ece_low);
  if (m.ece_high) p.set_ece_high(*m.ece_high);
  if (m.mmce) p.set_mmce(*m.mmce);
  if (m.tace) p.set_tace(*m.tace);
  if (m.rmsce) p.set_rmsce(*m.rmsce);
  if (m.smece) p.set_smece(*m.smece);
  if (m.fpr95) p.set_fpr95(*m.fpr95);
  if (m.aupr) p.set_aupr(*m.aupr);
  p.set_estimators(m.estimators);
  p.set_calibration(m.calibration);
  p.set_train_loss(r.train_loss);
  p.set_train_accuracy(r.train_accuracy);
  p.set_lr(r.lr);
  p.set_samples_per_sec(r.samples_per_sec);
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
  }
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
