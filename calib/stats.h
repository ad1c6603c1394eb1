#ifndef MIXCAL_CALIB_STATS_H_
#define MIXCAL_CALIB_STATS_H_

// Summaries over seeds, as papers print them: the mean and the sample
// standard deviation (n - 1 in the denominator; 0 for a single value), and
// paired comparisons of two configurations with a Student-t interval.

#include <cstddef>

#include "absl/types/span.h"

namespace mixcal::calib {

struct MeanStd {
  double mean = 0;
  double std = 0;
  size_t count = 0;
};

// All zero for an empty span.
MeanStd MeanAndStd(absl::Span<const double> values);

// The p-quantile of Student's t distribution with `df` degrees of freedom,
// p in (0, 1), df >= 1 (e.g. StudentTQuantile(0.975, 2) = 4.302653). Accurate
// to about 1e-9; NaN outside the domain.
double StudentTQuantile(double p, double df);

// The mean of paired differences d_i = a_i - b_i with its two-sided 95%
// Student-t interval: mean ± t(0.975, n-1)·sd/√n. `a` and `b` are the same
// length, element i of each from the same seed. With one pair the interval
// is unbounded (low = -inf, high = +inf); with none everything is zero.
struct PairedDiff {
  double mean = 0;
  double low = 0;
  double high = 0;
  size_t pairs = 0;
  // The interval excludes 0.
  bool significant() const { return pairs >= 2 && (low > 0 || high < 0); }
};
PairedDiff PairedDifference(absl::Span<const double> a,
                            absl::Span<const double> b);

}  // namespace mixcal::calib

#endif  // MIXCAL_CALIB_STATS_H_
