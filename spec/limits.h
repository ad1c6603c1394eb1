#ifndef MIXCAL_SPEC_LIMITS_H_
#define MIXCAL_SPEC_LIMITS_H_

// The API's list limits and their defaults, as proto/mixcal/v1/*.proto
// documents them: the handlers check a request against them and the store
// applies them, from this one place.

#include <algorithm>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace mixcal::spec {

struct ListLimit {
  const char* field;  // as the error names it
  int max;
  int default_value;  // for 0 (unset)
};

inline constexpr ListLimit kListSweepsLimit{"limit", 1000, 100};
inline constexpr ListLimit kListJobsLimit{"limit", 10000, 1000};
inline constexpr ListLimit kListEventsLimit{"limit", 10000, 1000};
inline constexpr ListLimit kMetricsPageSize{"page_size", 10000, 1000};

// InvalidArgument naming the field and its range when `requested` is over
// the limit (0 means the default).
inline absl::Status CheckLimit(const ListLimit& l, int64_t requested) {
  if (requested >= 0 && requested <= l.max) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      l.field, " must be in [1, ", l.max, "] (0 for ", l.default_value,
      "), got ", requested));
}

// The number of rows to return for `requested`: its default for 0, else
// clamped to [1, max].
inline int EffectiveLimit(const ListLimit& l, int64_t requested) {
  if (requested <= 0) return l.default_value;
  return static_cast<int>(std::min<int64_t>(requested, l.max));
}

}  // namespace mixcal::spec

#endif  // MIXCAL_SPEC_LIMITS_H_
