#ifndef MIXCAL_STORAGE_INTERNAL_JOB_RULES_H_
#define MIXCAL_STORAGE_INTERNAL_JOB_RULES_H_

// What a job's reports are checked against (ReportLog): its epochs and its
// kept-predictions policy from the stored config, and how many of its
// epochs are stored. With the connection's lock held.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "calib/config.h"

namespace mixcal::storage {

class Connection;

// A job's epochs, and which of them keep the test split's predictions.
struct JobRules {
  int epochs = 0;
  calib::TrainConfig policy;  // epochs, predictions, predictions_every
};

// From the job's stored config; NotFound, DataLoss (unparseable config).
absl::StatusOr<JobRules> ReadRules(Connection& c, int64_t job_id);

// How many distinct epochs in [1, through] of a job are stored.
absl::StatusOr<int64_t> StoredEpochs(Connection& c, int64_t job,
                                     uint32_t through);

// Which epochs a policy keeps, in words, for a refusal.
std::string KeptInWords(const calib::TrainConfig& p);

}  // namespace mixcal::storage

#endif  // MIXCAL_STORAGE_INTERNAL_JOB_RULES_H_
