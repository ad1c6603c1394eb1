#include "base/utf8.h"

#include "absl/strings/str_cat.h"

namespace mixcal {
namespace {

// The length of the well-formed sequence starting at s[i], or 0.
size_t SequenceLength(absl::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t n = 0;
  uint32_t cp = 0;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)) return 0;  // overlong
  if (cp >= 0xD800 && cp <= 0xDFFF) return 0;                        // surrogate
  if (cp > 0x10FFFF) return 0;
  return n;
}

}  // namespace

bool IsValidUtf8(absl::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = SequenceLength(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

absl::Status CheckText(absl::string_view field, absl::string_view s,
                       size_t max_bytes) {
  if (s.size() > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " must be at most ", max_bytes, " bytes, got ", s.size()));
  }
  if (!IsValidUtf8(s)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must be valid UTF-8"));
  }
  if (s.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must not contain a NUL byte"));
  }
  return absl::OkStatus();
}

std::string ToValidUtf8(absl::string_view s, size_t max_bytes) {
  std::string out;
  out.reserve(std::min(s.size(), max_bytes));
  for (size_t i = 0; i < s.size();) {
    size_t n = SequenceLength(s, i);
    absl::string_view piece = n == 0 ? "\xEF\xBF\xBD" : s.substr(i, n);
    if (out.size() + piece.size() > max_bytes) break;
    out.append(piece.data(), piece.size());
    i += n == 0 ? 1 : n;
  }
  return out;
}

std::string Echo(absl::string_view s) {
  constexpr size_t kMax = 64;
  if (s.size() <= kMax && IsValidUtf8(s)) return std::string(s);
  std::string out = ToValidUtf8(s, kMax);
  if (s.size() > kMax) absl::StrAppend(&out, "... (", s.size(), " bytes)");
  return out;
}

}  // namespace mixcal
