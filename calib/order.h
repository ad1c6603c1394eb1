#ifndef MIXCAL_CALIB_ORDER_H_
#define MIXCAL_CALIB_ORDER_H_

// Sorting the few thousand scores of a split, which the metrics and the
// calibrators do many times an epoch.

#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace mixcal::calib {

// The indices 0..n-1 ordered by `key`, ascending (or descending), ties in
// input order: what std::stable_sort of the indices gives, by a stable LSD
// radix sort on the floats' bits (-0 equal to +0, NaN after +inf): about a
// tenth of std::sort's time on 6,000 confidences.
std::vector<uint32_t> StableOrder(absl::Span<const float> key,
                                  bool descending = false);

}  // namespace mixcal::calib

#endif  // MIXCAL_CALIB_ORDER_H_
