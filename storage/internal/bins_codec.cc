#include "storage/internal/bins_codec.h"

#include <charconv>
#include <cmath>

namespace mixcal::storage {

std::string EncodeBins(
    const google::protobuf::RepeatedPtrField<v1::ReliabilityBin>& bins) {
  std::string out;
  out.reserve(2 + bins.size() * 32);
  out.push_back('[');
  char buf[32];
  for (int b = 0; b < bins.size(); ++b) {
    const v1::ReliabilityBin& bin = bins[b];
    out.append(b == 0 ? "[" : ",[");
    out.append(buf, std::to_chars(buf, buf + sizeof buf, bin.count()).ptr);
    out.push_back(',');
    const double sum = bin.confidence_sum();
    if (std::isfinite(sum)) {
      out.append(buf, std::to_chars(buf, buf + sizeof buf, sum).ptr);
    } else {
      out.append("null");  // not valid JSON otherwise; validated away before
    }
    out.push_back(',');
    out.append(buf, std::to_chars(buf, buf + sizeof buf, bin.correct()).ptr);
    out.push_back(']');
  }
  out.push_back(']');
  return out;
}

// The inverse of EncodeBins; false when `text` is not of that form.
bool DecodeBins(absl::string_view text, v1::EpochMetrics* m) {
  const char* p = text.data();
  const char* end = p + text.size();
  auto expect = [&](char c) {
    if (p == end || *p != c) return false;
    ++p;
    return true;
  };
  if (!expect('[')) return false;
  if (p != end && *p == ']') return ++p == end;
  while (true) {
    v1::ReliabilityBin* bin = m->add_bins();
    int64_t count = 0, correct = 0;
    double sum = 0;
    if (!expect('[')) return false;
    auto r = std::from_chars(p, end, count);
    if (r.ec != std::errc()) return false;
    p = r.ptr;
    if (!expect(',')) return false;
    auto d = std::from_chars(p, end, sum);
    if (d.ec != std::errc()) return false;
    p = d.ptr;
    if (!expect(',')) return false;
    r = std::from_chars(p, end, correct);
    if (r.ec != std::errc()) return false;
    p = r.ptr;
    if (!expect(']')) return false;
    bin->set_count(count);
    bin->set_confidence_sum(sum);
    bin->set_correct(correct);
    if (p != end && *p == ',') {
      ++p;
      continue;
    }
    return expect(']') && p == end;
  }
}

}  // namespace mixcal::storage
