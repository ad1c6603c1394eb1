#ifndef MIXCAL_CALIB_METRICS_H_
#define MIXCAL_CALIB_METRICS_H_

// Calibration metrics exactly as reference/methods-and-metrics.md defines
// them. Torch-free so that storage and the CLI can re-derive ECE, MCE and OE
// from stored reliability bins with the same code.

#include <cstddef>
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

// --- Beyond top-label ECE (the estimator settings are part of each name) ---

// Classwise (marginal) ECE, Kull et al. 2019 / Nixon et al. 2019: for every
// class k, p_k of every example binned into num_bins equal-width bins
// ((lo, hi] as above), sum_b (n_b/N) |freq_b(y = k) - mean_b(p_k)|; the mean
// over classes. `probs` is count x classes, row-major.
double ClasswiseEce(absl::Span<const float> probs,
                    absl::Span<const int32_t> labels, int classes,
                    int num_bins);

// The debiased estimate of the L2 top-label calibration error (Kumar et
// al. 2019, "Verified Uncertainty Calibration"), from equal-width bins:
// sqrt(max(0, sum_b (n_b/N) [(acc_b - conf_b)^2 - acc_b (1 - acc_b) /
// (n_b - 1)])), the correction only where n_b >= 2.
double DebiasedL2CalibrationError(absl::Span<const ReliabilityBin> bins);

// The root-mean-square (L2) top-label calibration error from the same bins,
// without the correction: sqrt(sum_b (n_b/N)(acc_b - conf_b)^2).
double Rmsce(absl::Span<const ReliabilityBin> bins);

// Smooth ECE (Blasiok & Nakkiran 2023, "Smooth ECE: Principled Reliability
// Diagrams via Kernel Smoothing"): with the reflected Gaussian kernel K_s on
// [0, 1] (images of f at -f and 2 - f, and so on),
//   smECE_s = integral over t in [0, 1] of |(1/N) sum_i K_s(t, r_i)(c_i - r_i)|,
// r the top-label confidence and c its correctness; the width is the fixed
// point s* = smECE_{s*} (smECE_s falls as s grows), found on log s within
// [1e-4, 1] to a relative 1e-3 (bracketed by factor-2 steps from the
// 15-bin ECE, then regula falsi, Illinois variant). The sum over examples goes
// through a grid of G >= 10/s + 1 points in [0, 1] (each example split
// linearly between its two neighbours), the integral by the trapezoid rule.
// Returns smECE at s* (equal to s* up to the tolerance) and s*.
struct SmoothEce {
  double value = 0, width = 0;
};
SmoothEce SmoothCalibrationError(absl::Span<const float> confidence,
                                 absl::Span<const uint8_t> correct);

// Murphy's decomposition of the top-label Brier score (confidence against
// correctness) over the bins: reliability sum_b (n_b/N)(conf_b - acc_b)^2,
// resolution sum_b (n_b/N)(acc_b - acc)^2, uncertainty acc (1 - acc).
struct BrierDecomposition {
  double reliability = 0, resolution = 0, uncertainty = 0;
};
BrierDecomposition TopLabelBrierDecomposition(
    absl::Span<const ReliabilityBin> bins);

// Area under the risk-coverage curve (Geifman & El-Yaniv 2017): examples
// sorted by confidence, highest first (ties in input order); the mean over
// coverages i/N, i = 1..N, of the error rate of the first i.
double Aurc(absl::Span<const float> confidence,
            absl::Span<const uint8_t> correct);

// Out-of-distribution detection by confidence, in-distribution positive:
// the false-positive rate at the threshold keeping 95% of the positives
// (the ceil(0.95 n)-th highest positive score; scores >= it count), and the
// area under the precision-recall curve as average precision
// (sum over distinct thresholds of (R_i - R_{i-1}) P_i, scikit-learn's
// average_precision_score).
double FprAtTpr(absl::Span<const float> positive,
                absl::Span<const float> negative, double tpr);
double AveragePrecision(absl::Span<const float> positive,
                        absl::Span<const float> negative);

// Thresholded adaptive calibration error (Nixon et al. 2019, "Measuring
// Calibration in Deep Learning"): for each class k, the predictions with
// p_k > threshold, sorted and cut into num_bins equal-mass groups (as
// AdaptiveEce), sum over groups of (n_g / N_k) |freq_g(y = k) - mean_g(p_k)|;
// the mean over the classes that have any such prediction.
double ThresholdedAdaptiveEce(absl::Span<const float> probs,
                              absl::Span<const int32_t> labels, int classes,
                              int num_bins, double threshold = 0.01);

// MMCE (Kumar et al. 2018) as a metric: sqrt(sum_ij (c_i - r_i)(c_j - r_j)
// exp(-|r_i - r_j| / width)) / N with r the top-label confidence and c its
// correctness; width 0.4 as the paper. O(N log N): the Laplacian kernel
// factorises along sorted confidences.
double Mmce(absl::Span<const float> confidence,
            absl::Span<const uint8_t> correct, double width = 0.4);

// A percentile bootstrap interval of ECE over the examples: `resamples`
// resamples with replacement (drawn from `seed`), each binned into
// num_bins equal-width bins; the (1 - level)/2 and (1 + level)/2 quantiles
// of their ECEs.
struct Interval {
  double low = 0, high = 0;
};
Interval BootstrapEceInterval(absl::Span<const float> confidence,
                              absl::Span<const uint8_t> correct, int num_bins,
                              int resamples = 200, double level = 0.95,
                              uint64_t seed = 0);

// The resamples' draw counts depend only on (N, resamples, seed) and are
// kept between calls (the last four sets, each up to 16 MiB); tests set a
// smaller limit (0: none kept) to check that both ways agree.
void SetBootstrapDrawTableBytesForTesting(size_t bytes);

}  // namespace mixcal::calib

#endif  // MIXCAL_CALIB_METRICS_H_
