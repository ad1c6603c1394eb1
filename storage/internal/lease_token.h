#ifndef MIXCAL_STORAGE_INTERNAL_LEASE_TOKEN_H_
#define MIXCAL_STORAGE_INTERNAL_LEASE_TOKEN_H_

// A lease's token: what proves that a call comes from the worker the lease
// was given to (jobs.lease_token; DESIGN.md section 6).

#include <string>

namespace mixcal::storage {

// 128 bits from the OS's random source, as 32 hex digits. Thread-safe.
std::string NewLeaseToken();

// Compares every byte whatever the first difference, so timing does not
// tell a caller how much of a guessed token was right.
bool SameToken(const std::string& stored, const std::string& given);

}  // namespace mixcal::storage

#endif  // MIXCAL_STORAGE_INTERNAL_LEASE_TOKEN_H_
