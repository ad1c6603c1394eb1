#ifndef MIXCAL_CALIB_METRICS_H_
#define MIXCAL_CALIB_METRICS_H_

// Calibration metrics exactly as reference/methods-and-metrics.md defines
// them. Torch-free so that storage and the CLI can re-derive ECE, MCE and OE
// from stored reliability bins with the same code.

#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace mixcal::calib {

// One reliability bin: M equal-width bins, bin m (1-based) holds top-label
// confidences in ((m-1)/M, m/M]; a confidence of 0 goes to bin 1.
struct ReliabilityBin {
  int64_t count = 0;
  double confidence_sum = 0;
  int64_t correct = 0;
};

struct Calibration {
  double ece = 0;  // sum_m (n_m/N) |acc_m - conf_m|
  double mce = 0;  // max over non-empty m of |acc_m - conf_m|
  double oe = 0;   // sum_m (n_m/N) conf_m max(conf_m - acc_m, 0)
};

// The 1-based bin of confidence c among num_bins equal-width bins.
int BinIndex(double confidence, int num_bins);

// Bins confidences (in [0, 1]) with their correctness. `confidence` and
// `correct` have the same length; num_bins >= 1.
std::vector<ReliabilityBin> BinConfidences(absl::Span<const float> confidence,
                                           absl::Span<const uint8_t> correct,
                                           int num_bins);

// ECE, MCE and OE from bins; empty bins contribute nothing; all zero when
// every bin is empty.
Calibration CalibrationFromBins(absl::Span<const ReliabilityBin> bins);

// ECE over num_bins equal-mass bins: the confidences sorted and cut at
// floor(i*N/M), so each group holds floor(N/M) or ceil(N/M) examples.
double AdaptiveEce(absl::Span<const float> confidence,
                   absl::Span<const uint8_t> correct, int num_bins);

// Area under the ROC curve of a score that should be higher for `positive`
// than for `negative` (ties count one half). 0.5 when either is empty.
double Auroc(absl::Span<const float> positive,
             absl::Span<const float> negative);

}  // namespace mixcal::calib

#endif  // MIXCAL_CALIB_METRICS_H_
