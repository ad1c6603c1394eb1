#include "storage/internal/rows.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace mixcal::storage {

const char kJobColumns[] =
    "id, sweep_id, method, value, seed, config, state, priority, device, "
    "attempt, "
    "max_attempts, COALESCE(worker_id, 0), lease_expires_at, checkpoint, "
    "checkpoint_epoch, "
    "last_epoch, error, created_at, started_at, finished_at, handbacks";

absl::StatusOr<v1::Job> JobFromRow(const Statement& s) {
  v1::Job j;
  j.set_id(s.Int(0));
  j.set_sweep_id(s.Int(1));
  j.set_method(s.Text(2));
  j.set_value(s.Double(3));
  j.set_seed(static_cast<uint64_t>(s.Int(4)));
  if (!j.mutable_config()->ParseFromString(s.Blob(5))) {
    return absl::DataLossError(absl::StrCat(
        "job ", j.id(), ": its stored config cannot be parsed (the store file "
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
  return j;
}

const char kMetricColumns[] =
    "m.job_id, m.epoch, m.split, m.count, m.accuracy, m.nll, m.brier, m.ece, "
    "m.mce, m.oe, "
    "m.adaptive_ece, m.mean_confidence, m.mean_entropy, m.auroc, "
    "m.temperature, m.train_loss, "
    "m.train_accuracy, m.lr, m.samples_per_sec, m.wall_seconds, j.method, "
    "j.value, j.seed, m.classwise_ece, m.l2_ce_debiased, m.brier_reliability, "
    "m.brier_resolution, m.brier_uncertainty, m.aurc, m.fpr95, m.aupr, "
    "m.estimators, m.calibration, m.ece_low, m.ece_high, m.mmce, m.tace, m.rmsce, m.smece";

v1::EpochMetrics MetricsFromRow(const Statement& s) {
  v1::EpochMetrics m;
  m.set_job_id(s.Int(0));
  m.set_epoch(static_cast<uint32_t>(s.Int(1)));
  m.set_split(s.Text(2));
  m.set_count(s.Int(3));
  m.set_accuracy(s.Double(4));
  m.set_nll(s.Double(5));
  m.set_brier(s.Double(6));
  m.set_ece(s.Double(7));
  m.set_mce(s.Double(8));
  m.set_oe(s.Double(9));
  m.set_adaptive_ece(s.Double(10));
  m.set_mean_confidence(s.Double(11));
  m.set_mean_entropy(s.Double(12));
  if (!s.IsNull(13)) m.set_auroc(s.Double(13));
  if (!s.IsNull(14)) m.set_temperature(s.Double(14));
  m.set_train_loss(s.Double(15));
  m.set_train_accuracy(s.Double(16));
  m.set_lr(s.Double(17));
  m.set_samples_per_sec(s.Double(18));
  m.set_wall_seconds(s.Double(19));
  m.set_method(s.Text(20));
  m.set_value(s.Double(21));
  m.set_seed(static_cast<uint64_t>(s.Int(22)));
  if (!s.IsNull(23)) m.set_classwise_ece(s.Double(23));
  if (!s.IsNull(24)) m.set_l2_ce_debiased(s.Double(24));
  if (!s.IsNull(25)) m.set_brier_reliability(s.Double(25));
  if (!s.IsNull(26)) m.set_brier_resolution(s.Double(26));
  if (!s.IsNull(27)) m.set_brier_uncertainty(s.Double(27));
  if (!s.IsNull(28)) m.set_aurc(s.Double(28));
  if (!s.IsNull(29)) m.set_fpr95(s.Double(29));
  if (!s.IsNull(30)) m.set_aupr(s.Double(30));
  m.set_estimators(s.Text(31));
  m.set_calibration(s.Text(32));
  if (!s.IsNull(33)) m.set_ece_low(s.Double(33));
  if (!s.IsNull(34)) m.set_ece_high(s.Double(34));
  if (!s.IsNull(35)) m.set_mmce(s.Double(35));
  if (!s.IsNull(36)) m.set_tace(s.Double(36));
  if (!s.IsNull(37)) m.set_rmsce(s.Double(37));
  if (!s.IsNull(38)) m.set_smece(s.Double(38));
  return m;
}

bool ValidSplitName(const std::string& s) {
  if (s.empty() || s.size() > 32) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

std::string WorkerDeviceClass(const std::string& device) {
  return device.rfind("cuda", 0) == 0 ? "cuda" : "cpu";
}

}  // namespace mixcal::storage
