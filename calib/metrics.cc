#include "calib/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

namespace mixcal::calib {

int BinIndex(double confidence, int num_bins) {
  // (lo, hi] bins: ceil(c*M) is the 1-based bin; c = 0 lands in bin 1.
  int m = static_cast<int>(std::ceil(confidence * num_bins));
  return std::clamp(m, 1, num_bins);
}

std::vector<ReliabilityBin> BinConfidences(absl::Span<const float> confidence,
                                           absl::Span<const uint8_t> correct,
                                           int num_bins) {
  std::vector<ReliabilityBin> bins(num_bins);
  for (size_t i = 0; i < confidence.size(); ++i) {
    ReliabilityBin& b = bins[BinIndex(confidence[i], num_bins) - 1];
    b.count += 1;
    b.confidence_sum += confidence[i];
    b.correct += correct[i] ? 1 : 0;
  }
  return bins;
}

Calibration CalibrationFromBins(absl::Span<const ReliabilityBin> bins) {
  int64_t total = 0;
  for (const ReliabilityBin& b : bins) total += b.count;
  Calibration c;
  if (total == 0) return c;
  for (const ReliabilityBin& b : bins) {
    if (b.count == 0) continue;
    double acc = static_cast<double>(b.correct) / b.count;
    double conf = b.confidence_sum / b.count;
    double weight = static_cast<double>(b.count) / total;
    double gap = std::abs(acc - conf);
    c.ece += weight * gap;
    c.mce = std::max(c.mce, gap);
    c.oe += weight * conf * std::max(conf - acc, 0.0);
  }
  return c;
}

double AdaptiveEce(absl::Span<const float> confidence,
                   absl::Span<const uint8_t> correct, int num_bins) {
  const size_t n = confidence.size();
  if (n == 0) return 0;
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (confidence[a] != confidence[b]) return confidence[a] < confidence[b];
    return a < b;
  });
  double ece = 0;
  for (int m = 0; m < num_bins; ++m) {
    size_t lo = (static_cast<size_t>(m) * n) / num_bins;
    size_t hi = (static_cast<size_t>(m + 1) * n) / num_bins;
    if (hi == lo) continue;
    double conf = 0, acc = 0;
    for (size_t i = lo; i < hi; ++i) {
      conf += confidence[order[i]];
      acc += correct[order[i]] ? 1 : 0;
    }
    double count = static_cast<double>(hi - lo);
    ece += (count / n) * std::abs(acc / count - conf / count);
  }
  return ece;
}

double Auroc(absl::Span<const float> positive,
             absl::Span<const float> negative) {
  if (positive.empty() || negative.empty()) return 0.5;
  // Mann-Whitney U with mid-ranks for ties.
  std::vector<std::pair<float, bool>> all;
  all.reserve(positive.size() + negative.size());
  for (float v : positive) all.emplace_back(v, true);
  for (float v : negative) all.emplace_back(v, false);
  std::sort(all.begin(), all.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  double positive_rank_sum = 0;
  size_t i = 0;
  while (i < all.size()) {
    size_t j = i;
    while (j < all.size() && all[j].first == all[i].first) ++j;
    double mid_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;
    for (size_t k = i; k < j; ++k)
      if (all[k].second) positive_rank_sum += mid_rank;
    i = j;
  }
  double np = positive.size(), nn = negative.size();
  double u = positive_rank_sum - np * (np + 1) / 2;
  return u / (np * nn);
}

}  // namespace mixcal::calib
