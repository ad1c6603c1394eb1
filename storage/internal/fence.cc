#include "storage/internal/fence.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "storage/internal/lease_token.h"

namespace mixcal::storage {

absl::Status CheckLease(Connection& c, const v1::Lease& lease,
                        v1::JobState* state_out, int64_t worker_id) {
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement s,
      c.db()->Cached("SELECT state, attempt, lease_token, "
                     "COALESCE(worker_id, 0) FROM jobs WHERE id = ?"));
  s->Bind(1, lease.job_id());
  MIXCAL_ASSIGN_OR_RETURN(bool found, s->Step());
  if (!found)
    return absl::NotFoundError(absl::StrCat("no job ", lease.job_id()));
  const auto state = static_cast<v1::JobState>(s->Int(0));
  const int64_t attempt = s->Int(1);
  // The token proves the caller is the worker this attempt was given to:
  // the attempt number alone is small and guessable. (A worker whose lease
  // went to another attempt is told so below: its token is of its own.)
  const bool same_attempt = attempt == lease.attempt();
  if (same_attempt && !SameToken(s->Text(2), lease.token())) {
    return absl::PermissionDeniedError(absl::StrCat(
        "lease of job ", lease.job_id(), " attempt ", lease.attempt(),
        " was not given to this caller (wrong lease token)"));
  }
  if (worker_id != 0 && s->Int(3) != worker_id) {
    return absl::FailedPreconditionError(
        absl::StrCat("stale lease: job ", lease.job_id(),
                     " is not leased to worker ", worker_id));
  }
  if (state_out != nullptr && same_attempt) *state_out = state;
  if (!same_attempt || state != v1::RUNNING) {
    return absl::FailedPreconditionError(
        absl::StrCat("stale lease: job ", lease.job_id(), " attempt ",
                     lease.attempt(), " is not running (job is ",
                     v1::JobState_Name(state), " at attempt ", attempt, ")"));
  }
  return absl::OkStatus();
}

}  // namespace mixcal::storage
