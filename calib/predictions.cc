#include "calib/predictions.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace mixcal::calib {

uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) {  // inf or NaN
    return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0));
  }
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow
  if (abs < 0x38800000u) {  // subnormal half (or zero)
    // value = abs as float; half subnormal unit is 2^-24.
    float v;
    std::memcpy(&v, &abs, 4);
    const float scaled = v * 16777216.0f;  // 2^24
    // Round to nearest even.
    float r = std::nearbyint(scaled);
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(r));
  }
  // Normal: rebias the exponent, round the 13 dropped mantissa bits to
  // nearest even.
  uint32_t m = abs - 0x38000000u;  // exponent bias 127 -> 15
  const uint32_t round = 0x0fffu + ((m >> 13) & 1u);
  m += round;
  return static_cast<uint16_t>(sign | (m >> 13));
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t man = h & 0x3ffu;
  uint32_t x;
  if (exp == 0) {
    if (man == 0) {
      x = sign;
    } else {  // subnormal: man * 2^-24
      float v = static_cast<float>(man) / 16777216.0f;
      std::memcpy(&x, &v, 4);
      x |= sign;
    }
  } else if (exp == 31) {
    x = sign | 0x7f800000u | (man << 13);
  } else {
    x = sign | ((exp + 112u) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

std::string EncodeProbabilities(absl::Span<const float> probs) {
  std::string out(probs.size() * 2, '\0');
  for (size_t i = 0; i < probs.size(); ++i) {
    const uint16_t h = FloatToHalf(probs[i]);
    out[2 * i] = static_cast<char>(h & 0xff);
    out[2 * i + 1] = static_cast<char>(h >> 8);
  }
  return out;
}

std::string EncodeLabels(absl::Span<const int32_t> labels) {
  std::string out(labels.size() * 4, '\0');
  for (size_t i = 0; i < labels.size(); ++i) {
    const uint32_t v = static_cast<uint32_t>(labels[i]);
    for (int b = 0; b < 4; ++b)
      out[4 * i + b] = static_cast<char>((v >> (8 * b)) & 0xff);
  }
  return out;
}

absl::StatusOr<std::vector<float>> DecodeProbabilities(absl::string_view bytes,
                                                       int64_t count,
                                                       int classes) {
  const int64_t n = count * classes;
  if (count < 0 || classes < 1 || static_cast<int64_t>(bytes.size()) != 2 * n) {
    return absl::DataLossError(absl::StrCat(
        "probabilities hold ", bytes.size(), " bytes; ", count, " x ", classes,
        " float16 values need ", 2 * n));
  }
  std::vector<float> out(static_cast<size_t>(n));
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  for (int64_t i = 0; i < n; ++i)
    out[i] = HalfToFloat(static_cast<uint16_t>(p[2 * i] | (p[2 * i + 1] << 8)));
  return out;
}

namespace {
uint32_t LabelAt(const unsigned char* p, int64_t i) {
  return p[4 * i] | (p[4 * i + 1] << 8) | (p[4 * i + 2] << 16) |
         (static_cast<uint32_t>(p[4 * i + 3]) << 24);
}
}  // namespace

absl::Status CheckLabels(absl::string_view bytes, int64_t count, int classes) {
  if (count < 0 || static_cast<int64_t>(bytes.size()) != 4 * count) {
    return absl::DataLossError(absl::StrCat("labels hold ", bytes.size(),
                                            " bytes; ", count,
                                            " int32 labels need ", 4 * count));
  }
  // One pass without a branch per label (a negative label is a large
  // unsigned one); the first bad label is looked for only when there is one.
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  uint32_t largest = 0;
  for (int64_t i = 0; i < count; ++i) largest = std::max(largest, LabelAt(p, i));
  if (count == 0 || largest < static_cast<uint32_t>(classes)) {
    return absl::OkStatus();
  }
  for (int64_t i = 0;; ++i) {
    const auto label = static_cast<int32_t>(LabelAt(p, i));
    if (label < 0 || label >= classes) {
      return absl::DataLossError(absl::StrCat("label ", i, " is ", label,
                                              ", outside [0, ", classes, ")"));
    }
  }
}

absl::StatusOr<std::vector<int32_t>> DecodeLabels(absl::string_view bytes,
                                                  int64_t count, int classes) {
  MIXCAL_RETURN_IF_ERROR(CheckLabels(bytes, count, classes));
  std::vector<int32_t> out(static_cast<size_t>(count));
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  for (int64_t i = 0; i < count; ++i) out[i] = static_cast<int32_t>(LabelAt(p, i));
  return out;
}

ProbabilityMetrics MetricsOfProbabilities(absl::Span<const float> probs,
                                          absl::Span<const int32_t> labels,
                                          int classes, int num_bins) {
  ProbabilityMetrics r;
  const int64_t n = static_cast<int64_t>(labels.size());
  r.count = n;
  if (n == 0 || classes < 1) return r;
  std::vector<float> conf(n);
  std::vector<uint8_t> correct(n);
  double correct_sum = 0, nll = 0, brier = 0, conf_sum = 0, entropy = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* p = probs.data() + i * classes;
    int best = 0;
    for (int k = 1; k < classes; ++k)
      if (p[k] > p[best]) best = k;  // first maximum, as argmax
    conf[i] = p[best];
    correct[i] = best == labels[i] ? 1 : 0;
    correct_sum += correct[i];
    conf_sum += p[best];
    nll -= std::log(std::max(static_cast<double>(p[labels[i]]), 1e-12));
    for (int k = 0; k < classes; ++k) {
      const double y = k == labels[i] ? 1.0 : 0.0;
      brier += (p[k] - y) * (p[k] - y);
      if (p[k] > 0) entropy -= p[k] * std::log(static_cast<double>(p[k]));
    }
  }
  r.accuracy = correct_sum / n;
  r.nll = nll / n;
  r.brier = brier / n;
  r.mean_confidence = conf_sum / n;
  r.mean_entropy = entropy / n;
  r.bins = BinConfidences(conf, correct, num_bins);
  const Calibration c = CalibrationFromBins(r.bins);
  r.ece = c.ece;
  r.mce = c.mce;
  r.oe = c.oe;
  r.adaptive_ece = AdaptiveEce(conf, correct, num_bins);
  return r;
}

}  // namespace mixcal::calib
