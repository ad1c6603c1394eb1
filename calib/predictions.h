#ifndef MIXCAL_CALIB_PREDICTIONS_H_
#define MIXCAL_CALIB_PREDICTIONS_H_

// Stored predictions: a split's predicted probabilities, count x classes
// IEEE binary16 values (little-endian, row-major), with int32 labels
// (little-endian). Torch-free: the worker encodes them, the store checks and
// averages them (seed ensembles), the CLI writes them to .npz / .csv.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "calib/metrics.h"

namespace mixcal::calib {

// At most this many values (count x classes) per stored split: 4 MB as
// float16, inside the coordinator's 8 MB message limit.
inline constexpr int64_t kMaxPredictionValues = 2'000'000;

// IEEE 754 binary16 <-> float, round to nearest even (as numpy's float16).
uint16_t FloatToHalf(float f);
float HalfToFloat(uint16_t h);

// `probs` (count x classes floats) as the stored bytes.
std::string EncodeProbabilities(absl::Span<const float> probs);
std::string EncodeLabels(absl::Span<const int32_t> labels);

// The stored bytes back; DataLoss naming what is wrong when the sizes do not
// match count and classes or a label is outside [0, classes).
absl::StatusOr<std::vector<float>> DecodeProbabilities(absl::string_view bytes,
                                                       int64_t count,
                                                       int classes);
absl::StatusOr<std::vector<int32_t>> DecodeLabels(absl::string_view bytes,
                                                  int64_t count, int classes);
// DecodeLabels' checks alone, without the copy.
absl::Status CheckLabels(absl::string_view bytes, int64_t count, int classes);

// The labelled metrics of probabilities, as the trainer computes them from
// logits (reference/methods-and-metrics.md): accuracy, NLL (of the
// probability clamped below at 1e-12, as float16 can hold 0), Brier, the
// bins and ECE/MCE/OE from them, adaptive ECE, mean confidence and mean
// entropy. `probs` is count x classes, row-major.
struct ProbabilityMetrics {
  int64_t count = 0;
  double accuracy = 0, nll = 0, brier = 0, ece = 0, mce = 0, oe = 0,
         adaptive_ece = 0, mean_confidence = 0, mean_entropy = 0;
  std::vector<ReliabilityBin> bins;
};
ProbabilityMetrics MetricsOfProbabilities(absl::Span<const float> probs,
                                          absl::Span<const int32_t> labels,
                                          int classes, int num_bins);

}  // namespace mixcal::calib

#endif  // MIXCAL_CALIB_PREDICTIONS_H_
