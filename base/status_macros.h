#ifndef MIXCAL_BASE_STATUS_MACROS_H_
#define MIXCAL_BASE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Abseil 20220623 (Debian 12) has no ABSL_RETURN_IF_ERROR; these are the
// project's one definition.

#define MIXCAL_STATUS_CONCAT_INNER_(a, b) a##b
#define MIXCAL_STATUS_CONCAT_(a, b) MIXCAL_STATUS_CONCAT_INNER_(a, b)

// Returns `expr`'s status from the current function when it is not OK.
#define MIXCAL_RETURN_IF_ERROR(expr)                                  \
  do {                                                                \
    if (::absl::Status mixcal_status_ = (expr); !mixcal_status_.ok()) \
      return mixcal_status_;                                          \
  } while (0)

// `lhs = value of expr`, or returns its error status.
#define MIXCAL_ASSIGN_OR_RETURN(lhs, expr)                                    \
  MIXCAL_ASSIGN_OR_RETURN_IMPL_(MIXCAL_STATUS_CONCAT_(mixcal_sor_, __LINE__), \
                                lhs, expr)
#define MIXCAL_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()

#endif  // MIXCAL_BASE_STATUS_MACROS_H_
