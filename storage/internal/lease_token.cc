#include "storage/internal/lease_token.h"

#include <random>

#include "absl/base/const_init.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace mixcal::storage {

// 128 bits from the OS's random source, as 32 hex digits.
std::string NewLeaseToken() {
  static absl::Mutex mu(absl::kConstInit);
  static std::random_device* rd = new std::random_device;
  absl::MutexLock lock(&mu);
  std::string out;
  for (int i = 0; i < 4; ++i) absl::StrAppend(&out, absl::Hex((*rd)(), absl::kZeroPad8));
  return out;
}

// Compares every byte whatever the first difference, so timing does not
// tell a caller how much of a guessed token was right.
bool SameToken(const std::string& stored, const std::string& given) {
  if (stored.size() != given.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < stored.size(); ++i)
    diff |= static_cast<unsigned char>(stored[i] ^ given[i]);
  return diff == 0;
}

}  // namespace mixcal::storage
