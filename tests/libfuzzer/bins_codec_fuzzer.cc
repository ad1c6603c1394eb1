// libFuzzer: text as stored bins (storage/internal/bins_codec.h). Whatever
// DecodeBins accepts must encode and decode back to the same bins, bit for
// bit; it must never crash on what a damaged file could hold.
//   tests/libfuzzer/run.sh

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "storage/internal/bins_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  mixcal::v1::EpochMetrics first;
  if (!mixcal::storage::DecodeBins(text, &first)) return 0;
  const std::string again = mixcal::storage::EncodeBins(first.bins());
  mixcal::v1::EpochMetrics second;
  if (!mixcal::storage::DecodeBins(again, &second) ||
      second.bins_size() != first.bins_size()) {
    std::fprintf(stderr, "re-encoded bins do not decode: %s\n", again.c_str());
    std::abort();
  }
  for (int i = 0; i < first.bins_size(); ++i) {
    const auto& a = first.bins(i);
    const auto& b = second.bins(i);
    const double x = a.confidence_sum(), y = b.confidence_sum();
    if (a.count() != b.count() || a.correct() != b.correct() ||
        std::memcmp(&x, &y, sizeof x) != 0) {
      std::fprintf(stderr, "bin %d changed in a round trip: %s\n", i,
                   again.c_str());
      std::abort();
    }
  }
  return 0;
}
