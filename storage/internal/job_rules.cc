#include "storage/internal/job_rules.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "spec/spec.h"
#include "storage/internal/connection.h"
#include "storage/internal/sqlite.h"

namespace mixcal::storage {

absl::StatusOr<JobRules> ReadRules(Connection& c, int64_t job_id) {
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement cfg,
      c.db()->Cached("SELECT config FROM jobs WHERE id = ?"));
  cfg->Bind(1, job_id);
  MIXCAL_ASSIGN_OR_RETURN(bool found, cfg->Step());
  if (!found) return absl::NotFoundError(absl::StrCat("no job ", job_id));
  v1::JobConfig config;
  const bool parsed = config.ParseFromString(cfg->Blob(0));
  cfg->Reset();
  if (!parsed) {
    return absl::DataLossError(absl::StrCat(
        "job ", job_id, ": its stored config cannot be parsed"));
  }
  JobRules rules;
  rules.epochs = spec::JobEpochs(config);
  absl::StatusOr<calib::TrainConfig> train = spec::ToTrainConfig(config);
  if (train.ok()) {
    rules.policy = *std::move(train);
  } else {
    rules.policy.predictions = calib::PredictionsMode::kNone;
  }
  rules.policy.epochs = rules.epochs;
  return rules;
}

// How many distinct epochs in [1, through] of a job are stored.
absl::StatusOr<int64_t> StoredEpochs(Connection& c, int64_t job,
                                     uint32_t through) {
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement covered,
      c.db()->Cached("SELECT COUNT(DISTINCT epoch) FROM epoch_metrics "
                     "WHERE job_id = ? AND epoch BETWEEN 1 AND ?"));
  covered->Bind(1, job).Bind(2, through);
  MIXCAL_RETURN_IF_ERROR(covered->Step().status());
  const int64_t stored = covered->Int(0);
  covered->Reset();
  return stored;
}

// Which epochs a policy keeps, in words, for a refusal.
std::string KeptInWords(const calib::TrainConfig& p) {
  switch (p.predictions) {
    case calib::PredictionsMode::kNone:
      return "none";
    case calib::PredictionsMode::kFinal:
      return absl::StrCat("the final epoch (", p.epochs, ")");
    case calib::PredictionsMode::kEveryN:
      return absl::StrCat("every ", p.predictions_every,
                          " epochs and the final one (", p.epochs, ")");
  }
  return "none";
}

}  // namespace mixcal::storage
