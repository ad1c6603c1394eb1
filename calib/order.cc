#include "calib/order.h"

#include <algorithm>
#include <cstring>

namespace mixcal::calib {
namespace {

// The float's bits as an unsigned key that orders as the floats do (-0 as
// +0; NaN after +inf).
uint32_t OrderedBits(float v) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof(u));
  if (u == 0x80000000u) u = 0;
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

}  // namespace

// Three passes of 11 bits; a pass is skipped where every key has the same
// digit there (the top bits of confidences in [0, 1] often do).
std::vector<uint32_t> StableOrder(absl::Span<const float> key,
                                  bool descending) {
  const size_t n = key.size();
  std::vector<uint32_t> order(n), bits(n), next_order(n), next_bits(n);
  for (size_t i = 0; i < n; ++i) {
    order[i] = static_cast<uint32_t>(i);
    bits[i] = descending ? ~OrderedBits(key[i]) : OrderedBits(key[i]);
  }
  constexpr int kDigit = 11;
  constexpr uint32_t kMask = (1u << kDigit) - 1;
  std::vector<uint32_t> start(kMask + 1);
  for (int shift = 0; shift < 32 && n > 1; shift += kDigit) {
    std::fill(start.begin(), start.end(), 0);
    for (size_t i = 0; i < n; ++i) ++start[(bits[i] >> shift) & kMask];
    if (start[(bits[0] >> shift) & kMask] == n) continue;
    uint32_t sum = 0;
    for (uint32_t& c : start) {
      const uint32_t count = c;
      c = sum;
      sum += count;
    }
    for (size_t i = 0; i < n; ++i) {
      const uint32_t at = start[(bits[i] >> shift) & kMask]++;
      next_bits[at] = bits[i];
      next_order[at] = order[i];
    }
    bits.swap(next_bits);
    order.swap(next_order);
  }
  return order;
}

}  // namespace mixcal::calib
