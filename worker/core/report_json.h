#ifndef MIXCAL_WORKER_CORE_REPORT_JSON_H_
#define MIXCAL_WORKER_CORE_REPORT_JSON_H_

// One JSON object per split of an epoch report, as mixcal-train prints them.

#include <string>
#include <vector>

#include "worker/core/trainer.h"

namespace mixcal::core {

// Lines without trailing newline, one per split, each with the keys epoch,
// split, count, accuracy, nll, brier, ece, mce, oe, adaptive_ece,
// mean_confidence, mean_entropy, train_loss, train_accuracy, lr,
// samples_per_sec, train_seconds, eval_seconds, bins
// ([{count, confidence_sum, correct}, ...]), plus temperature (test_ts) and
// auroc (noise, ood). Splits without labels carry null for the labelled
// metrics. Non-finite numbers are written as null.
std::vector<std::string> EpochReportJsonLines(const EpochReport& report);

}  // namespace mixcal::core

#endif  // MIXCAL_WORKER_CORE_REPORT_JSON_H_
