#ifndef MIXCAL_CALIB_STATS_H_
#define MIXCAL_CALIB_STATS_H_

// Summaries over seeds, as papers print them: the mean and the sample
// standard deviation (n - 1 in the denominator; 0 for a single value).

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

}  // namespace mixcal::calib

#endif  // MIXCAL_CALIB_STATS_H_
