#ifndef MIXCAL_CALIB_CALIBRATORS_H_
#define MIXCAL_CALIB_CALIBRATORS_H_

// Post-hoc calibrators fitted on the validation split's probabilities and
// applied to the test split's (torch-free; the scaling calibrators that
// need gradients live in worker/core/calibrators.h). Probabilities are
// count x classes, row-major; labels int32. Each Fit returns the fitted
// parameters, which Apply uses and Describe writes as JSON for the stored
// row.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/types/span.h"

namespace mixcal::calib {

// Histogram binning, one-vs-rest (Zadrozny & Elkan 2001; as netcal): for
// each class k, p_k cut into `bins` equal-width bins ((lo, hi], as the ECE
// bins); a bin's value is the fraction of validation examples in it whose
// label is k (an empty bin keeps its midpoint). Applied per class, then
// each row renormalised (a row of zeros becomes uniform).
struct HistogramBinning {
  int classes = 0, bins = 0;
  std::vector<double> value;  // classes x bins
};
HistogramBinning FitHistogramBinning(absl::Span<const float> probs,
                                     absl::Span<const int32_t> labels,
                                     int classes, int bins);

// Isotonic regression, one-vs-rest, renormalised (Zadrozny & Elkan 2002;
// scikit-learn's IsotonicRegression(out_of_bounds="clip") per class: the
// pool-adjacent-violators fit of 1[y = k] on p_k, predicted by linear
// interpolation between the fitted points, clipped at the ends).
struct IsotonicCalibration {
  int classes = 0;
  std::vector<std::vector<double>> x, y;  // per class: thresholds, values
};
IsotonicCalibration FitIsotonic(absl::Span<const float> probs,
                                absl::Span<const int32_t> labels, int classes);

// Platt scaling of the top label (Platt 1999; Guo et al. 2017's top-label
// form): P(correct) = sigmoid(a * logit(c) + b) for the top-label
// confidence c, fitted by Newton's method on the validation NLL (no
// regularisation); the top probability becomes that, the others keep their
// proportions.
struct PlattTopLabel {
  double a = 1, b = 0;
};
PlattTopLabel FitPlattTopLabel(absl::Span<const float> probs,
                               absl::Span<const int32_t> labels, int classes);

// Beta calibration of the top label (Kull et al. 2017): P(correct) =
// sigmoid(a ln c - b ln(1 - c) + m), fitted by Newton's method on the
// validation NLL (the unconstrained fit); applied as Platt's.
struct BetaTopLabel {
  double a = 1, b = 1, m = 0;
};
BetaTopLabel FitBetaTopLabel(absl::Span<const float> probs,
                             absl::Span<const int32_t> labels, int classes);

// The calibrated probabilities of `probs` (count x classes).
std::vector<float> Apply(const HistogramBinning& c, absl::Span<const float> probs);
std::vector<float> Apply(const IsotonicCalibration& c,
                         absl::Span<const float> probs);
std::vector<float> Apply(const PlattTopLabel& c, absl::Span<const float> probs,
                         int classes);
std::vector<float> Apply(const BetaTopLabel& c, absl::Span<const float> probs,
                         int classes);

// The fitted parameters as compact JSON, e.g. {"a":1.2,"b":-0.3}.
std::string Describe(const HistogramBinning& c);
std::string Describe(const IsotonicCalibration& c);
std::string Describe(const PlattTopLabel& c);
std::string Describe(const BetaTopLabel& c);

}  // namespace mixcal::calib

#endif  // MIXCAL_CALIB_CALIBRATORS_H_
