#include "calib/stats.h"

#include <cmath>

namespace mixcal::calib {

MeanStd MeanAndStd(absl::Span<const double> values) {
  MeanStd r;
  r.count = values.size();
  if (values.empty()) return r;
  for (double v : values) r.mean += v;
  r.mean /= static_cast<double>(values.size());
  if (values.size() < 2) return r;
  double ss = 0;
  for (double v : values) ss += (v - r.mean) * (v - r.mean);
  r.std = std::sqrt(ss / static_cast<double>(values.size() - 1));
  return r;
}

}  // namespace mixcal::calib
