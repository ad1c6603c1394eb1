#include "calib/metrics.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "calib/order.h"

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
  // By confidence, ties in input order.
  const std::vector<uint32_t> order = StableOrder(confidence);
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

namespace mixcal::calib {

double ClasswiseEce(absl::Span<const float> probs,
                    absl::Span<const int32_t> labels, int classes,
                    int num_bins) {
  const int64_t n = static_cast<int64_t>(labels.size());
  if (n == 0 || classes < 1) return 0;
  double total = 0;
  std::vector<ReliabilityBin> bins(static_cast<size_t>(num_bins));
  for (int k = 0; k < classes; ++k) {
    std::fill(bins.begin(), bins.end(), ReliabilityBin{});
    for (int64_t i = 0; i < n; ++i) {
      const float p = probs[i * classes + k];
      ReliabilityBin& b = bins[BinIndex(p, num_bins) - 1];
      ++b.count;
      b.confidence_sum += p;
      b.correct += labels[i] == k ? 1 : 0;
    }
    total += CalibrationFromBins(bins).ece;
  }
  return total / classes;
}

namespace {

// sum_b (n_b/N)(acc_b - conf_b)^2 over the bins, each term less
// acc_b (1 - acc_b) / (n_b - 1) where `debias` and n_b >= 2; floored at 0.
double MeanSquaredGap(absl::Span<const ReliabilityBin> bins, bool debias) {
  int64_t n = 0;
  for (const ReliabilityBin& b : bins) n += b.count;
  if (n == 0) return 0;
  double sum = 0;
  for (const ReliabilityBin& b : bins) {
    if (b.count == 0) continue;
    const double acc = static_cast<double>(b.correct) / b.count;
    const double conf = b.confidence_sum / b.count;
    double term = (acc - conf) * (acc - conf);
    if (debias && b.count >= 2) term -= acc * (1 - acc) / (b.count - 1);
    sum += static_cast<double>(b.count) / n * term;
  }
  return std::max(0.0, sum);
}

}  // namespace

double DebiasedL2CalibrationError(absl::Span<const ReliabilityBin> bins) {
  return std::sqrt(MeanSquaredGap(bins, /*debias=*/true));
}

double Rmsce(absl::Span<const ReliabilityBin> bins) {
  return std::sqrt(MeanSquaredGap(bins, /*debias=*/false));
}

namespace {

// smECE at width s: the residuals (c - r)/N spread onto a grid of G points,
// smoothed with the reflected Gaussian kernel, |.| integrated.
class SmoothEceAtWidth {
 public:
  SmoothEceAtWidth(absl::Span<const float> confidence,
                   absl::Span<const uint8_t> correct)
      : confidence_(confidence), correct_(correct) {}

  double operator()(double s) {
    const int g = static_cast<int>(
        std::min(20001.0, std::max(201.0, std::ceil(kPointsPerWidth / s) + 1)));
    if (g != static_cast<int>(mass_.size())) Spread(g);
    const double step = 1.0 / (g - 1);
    const int reach = static_cast<int>(std::ceil(6 * s / step));
    // Kernel weights by grid offset, and the masses padded by `reach` on
    // each side with their reflections at 0 and 1 (period 2(g - 1)).
    weight_.assign(reach + 1, 0.0);
    const double norm = 1.0 / (s * std::sqrt(2 * M_PI));
    for (int d = 0; d <= reach; ++d) {
      const double x = d * step / s;
      weight_[d] = norm * std::exp(-0.5 * x * x);
    }
    const int period = 2 * (g - 1);
    padded_.resize(static_cast<size_t>(g + 2 * reach));
    for (int m = -reach; m < g + reach; ++m) {
      int f = m % period;
      if (f < 0) f += period;
      padded_[m + reach] = mass_[f < g ? f : period - f];
    }
    double total = 0;
    for (int j = 0; j < g; ++j) {
      const double* at = padded_.data() + j + reach;
      double h = weight_[0] * at[0];
      for (int d = 1; d <= reach; ++d) h += weight_[d] * (at[-d] + at[d]);
      total += (j == 0 || j == g - 1 ? 0.5 : 1.0) * std::abs(h);
    }
    return total * step;
  }

 private:
  void Spread(int g) {
    mass_.assign(g, 0.0);
    const double n = static_cast<double>(confidence_.size());
    for (size_t i = 0; i < confidence_.size(); ++i) {
      const double at =
          std::clamp(static_cast<double>(confidence_[i]), 0.0, 1.0) * (g - 1);
      const int b = std::min(static_cast<int>(at), g - 2);
      const double frac = at - b;
      const double r = (correct_[i] - static_cast<double>(confidence_[i])) / n;
      mass_[b] += (1 - frac) * r;
      mass_[b + 1] += frac * r;
    }
  }

  // Grid points per kernel width: the linear spreading adds at most step^2/4
  // to the kernel's variance, about 0.1% of its width at 10 points.
  static constexpr double kPointsPerWidth = 10;

  absl::Span<const float> confidence_;
  absl::Span<const uint8_t> correct_;
  std::vector<double> mass_, weight_, padded_;
};

}  // namespace

SmoothEce SmoothCalibrationError(absl::Span<const float> confidence,
                                 absl::Span<const uint8_t> correct) {
  SmoothEce out;
  if (confidence.empty()) return out;
  SmoothEceAtWidth at(confidence, correct);
  // g(u) = smECE_s - s at s = e^u falls as u grows. Its zero is bracketed
  // by steps of a factor 2 from the 15-bin ECE (smECE is usually near it)
  // and narrowed by the Illinois variant of regula falsi to 1e-3 in log s:
  // about eight evaluations where bisection over all of [1e-4, 1] took
  // seventeen, the narrowest widths (the finest grids) among them.
  const double floor_u = std::log(1e-4), ceiling_u = 0, step_u = std::log(2.0);
  auto g = [&at](double u) { return at(std::exp(u)) - std::exp(u); };
  const double ece = CalibrationFromBins(BinConfidences(confidence, correct, 15)).ece;
  double lo = std::log(std::clamp(ece, 1e-4, 1.0)), g_lo = g(lo);
  double hi = lo, g_hi = g_lo;
  if (g_lo > 0) {  // the zero lies above: step up
    while (g_hi > 0 && hi < ceiling_u) {
      lo = hi;
      g_lo = g_hi;
      hi = std::min(hi + step_u, ceiling_u);
      g_hi = g(hi);
    }
    if (g_hi > 0) lo = hi;  // above 1: the width stops at 1
  } else {  // step down
    while (g_lo <= 0 && lo > floor_u) {
      hi = lo;
      g_hi = g_lo;
      lo = std::max(lo - step_u, floor_u);
      g_lo = g(lo);
    }
    if (g_lo <= 0) hi = lo;  // below 1e-4: the width stops there
  }
  // Now g_lo > 0 >= g_hi unless the bracket closed at a limit.
  int kept = 0;  // the end the last step replaced: -1 lo, +1 hi
  for (int it = 0; it < 100 && hi - lo > 1e-3; ++it) {
    double u = (lo * g_hi - hi * g_lo) / (g_hi - g_lo);
    if (!(u > lo && u < hi)) u = (lo + hi) / 2;
    const double g_u = g(u);
    if (g_u > 0) {
      lo = u;
      g_lo = g_u;
      if (kept == -1) g_hi /= 2;  // hi kept twice: halve its value
      kept = -1;
    } else {
      hi = u;
      g_hi = g_u;
      if (kept == 1) g_lo /= 2;
      kept = 1;
    }
  }
  out.width = std::exp((lo + hi) / 2);
  out.value = at(out.width);
  return out;
}

BrierDecomposition TopLabelBrierDecomposition(
    absl::Span<const ReliabilityBin> bins) {
  BrierDecomposition d;
  int64_t n = 0, correct = 0;
  for (const ReliabilityBin& b : bins) {
    n += b.count;
    correct += b.correct;
  }
  if (n == 0) return d;
  const double acc = static_cast<double>(correct) / n;
  for (const ReliabilityBin& b : bins) {
    if (b.count == 0) continue;
    const double w = static_cast<double>(b.count) / n;
    const double a = static_cast<double>(b.correct) / b.count;
    const double c = b.confidence_sum / b.count;
    d.reliability += w * (c - a) * (c - a);
    d.resolution += w * (a - acc) * (a - acc);
  }
  d.uncertainty = acc * (1 - acc);
  return d;
}

double Aurc(absl::Span<const float> confidence,
            absl::Span<const uint8_t> correct) {
  const size_t n = confidence.size();
  if (n == 0) return 0;
  const std::vector<uint32_t> order = StableOrder(confidence, /*descending=*/true);
  double errors = 0, sum = 0;
  for (size_t i = 0; i < n; ++i) {
    errors += correct[order[i]] ? 0 : 1;
    sum += errors / static_cast<double>(i + 1);
  }
  return sum / static_cast<double>(n);
}

double FprAtTpr(absl::Span<const float> positive,
                absl::Span<const float> negative, double tpr) {
  if (positive.empty() || negative.empty()) return 0;
  std::vector<float> pos(positive.begin(), positive.end());
  std::sort(pos.begin(), pos.end(), std::greater<float>());
  const size_t keep = static_cast<size_t>(
      std::ceil(tpr * static_cast<double>(pos.size()) - 1e-9));
  const float threshold = pos[std::max<size_t>(keep, 1) - 1];
  size_t above = 0;
  for (float v : negative) above += v >= threshold ? 1 : 0;
  return static_cast<double>(above) / static_cast<double>(negative.size());
}

double AveragePrecision(absl::Span<const float> positive,
                        absl::Span<const float> negative) {
  if (positive.empty()) return 0;
  std::vector<std::pair<float, bool>> all;
  all.reserve(positive.size() + negative.size());
  for (float v : positive) all.push_back({v, true});
  for (float v : negative) all.push_back({v, false});
  std::sort(all.begin(), all.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  const double total = static_cast<double>(positive.size());
  double tp = 0, fp = 0, ap = 0, last_recall = 0;
  for (size_t i = 0; i < all.size();) {
    // One threshold per distinct score.
    size_t j = i;
    for (; j < all.size() && all[j].first == all[i].first; ++j)
      (all[j].second ? tp : fp) += 1;
    const double recall = tp / total, precision = tp / (tp + fp);
    ap += (recall - last_recall) * precision;
    last_recall = recall;
    i = j;
  }
  return ap;
}

double Mmce(absl::Span<const float> confidence,
            absl::Span<const uint8_t> correct, double width) {
  const size_t n = confidence.size();
  if (n == 0) return 0;
  const std::vector<uint32_t> order = StableOrder(confidence);
  // sum_ij a_i a_j k_ij = sum_i a_i^2 + 2 sum_j a_j S_j, with
  // S_j = sum_{i<j} a_i exp(-(r_j - r_i)/w) = e^{-(r_j - r_{j-1})/w} (S_{j-1} + a_{j-1}).
  double total = 0, s = 0, prev_a = 0, prev_r = 0;
  for (size_t j = 0; j < n; ++j) {
    const double r = confidence[order[j]];
    const double a = (correct[order[j]] ? 1.0 : 0.0) - r;
    if (j > 0) s = std::exp(-(r - prev_r) / width) * (s + prev_a);
    total += a * a + 2 * a * s;
    prev_a = a;
    prev_r = r;
  }
  return std::sqrt(std::max(0.0, total)) / static_cast<double>(n);
}

namespace {

// One resample's draw counts: how often each of n examples is drawn in n
// draws with replacement. Indices from wyrand (one 64 x 64 -> 128-bit
// multiply per 64 bits, two thirds of splitmix64's time here), two 32-bit
// halves per 64 bits, scaled to [0, n) by a multiply and shift (Lemire).
void DrawCounts(uint64_t* state, size_t n, int32_t* counts) {
  std::fill(counts, counts + n, 0);
  auto next = [state]() {
    *state += 0xa0761d6478bd642fULL;
    const unsigned __int128 m = static_cast<unsigned __int128>(*state) *
                                (*state ^ 0xe7037ed1a0b428dbULL);
    return static_cast<uint64_t>(m >> 64) ^ static_cast<uint64_t>(m);
  };
  // n < 2^32: 32 bits choose an index.
  auto draw = [&](uint32_t bits) { ++counts[(uint64_t{bits} * n) >> 32]; };
  size_t i = 0;
  for (; i + 1 < n; i += 2) {
    const uint64_t x = next();
    draw(static_cast<uint32_t>(x));
    draw(static_cast<uint32_t>(x >> 32));
  }
  if (i < n) draw(static_cast<uint32_t>(next()));
}

// The draw counts of every resample (row r: resample r) depend only on
// (n, resamples, seed), and an epoch bootstraps the same test examples on
// each calibrator's split: the last four tables are kept, as bytes, each
// where it fits in draw_table_bytes (16 MiB) and no count passes 255 (else
// null: the caller draws each resample again). Drawing took two thirds of
// the interval's time.
struct DrawTable {
  size_t n = 0;
  int resamples = 0;
  uint64_t seed = 0;
  std::vector<uint8_t> counts;
};

std::mutex draw_tables_mu;
size_t draw_table_bytes = 16 << 20;

std::shared_ptr<const DrawTable> CachedDraws(size_t n, int resamples,
                                             uint64_t seed) {
  static std::vector<std::shared_ptr<const DrawTable>> tables;  // newest first
  {
    std::lock_guard<std::mutex> lock(draw_tables_mu);
    if (n * static_cast<size_t>(resamples) > draw_table_bytes) return nullptr;
    for (size_t i = 0; i < tables.size(); ++i) {
      const std::shared_ptr<const DrawTable> t = tables[i];
      if (t->n == n && t->resamples == resamples && t->seed == seed) {
        tables.erase(tables.begin() + i);
        tables.insert(tables.begin(), t);
        return t;
      }
    }
  }
  auto table = std::make_shared<DrawTable>();
  table->n = n;
  table->resamples = resamples;
  table->seed = seed;
  table->counts.resize(n * static_cast<size_t>(resamples));
  std::vector<int32_t> row(n);
  uint64_t state = seed;
  for (int r = 0; r < resamples; ++r) {
    DrawCounts(&state, n, row.data());
    for (size_t i = 0; i < n; ++i) {
      if (row[i] > 255) return nullptr;
      table->counts[r * n + i] = static_cast<uint8_t>(row[i]);
    }
  }
  std::lock_guard<std::mutex> lock(draw_tables_mu);
  tables.insert(tables.begin(), table);
  if (tables.size() > 4) tables.pop_back();
  return table;
}

}  // namespace

Interval BootstrapEceInterval(absl::Span<const float> confidence,
                              absl::Span<const uint8_t> correct, int num_bins,
                              int resamples, double level, uint64_t seed) {
  Interval out;
  const size_t n = confidence.size();
  if (n == 0 || resamples < 1) return out;
  // A resample's ECE is sum_b |sum_{i in b} w_i (c_i - r_i)| / N with w_i
  // how often example i is drawn, the same as sum_b (n_b/N)|acc_b - conf_b|
  // over the drawn examples. So the residuals c_i - r_i are laid out once,
  // grouped by bin (in input order within a bin, `member` the example),
  // and each resample takes the bins' dot products of counts and
  // residuals. Counting first keeps the draws free of the dependency chain
  // that summing into the bins draw by draw has (most draws land in one or
  // two bins).
  std::vector<size_t> start(static_cast<size_t>(num_bins) + 1, 0);
  std::vector<int> bin_of(n);
  for (size_t i = 0; i < n; ++i) {
    bin_of[i] = BinIndex(confidence[i], num_bins) - 1;
    ++start[bin_of[i] + 1];
  }
  for (int k = 0; k < num_bins; ++k) start[k + 1] += start[k];
  std::vector<double> residual(n);
  std::vector<uint32_t> member(n);
  {
    std::vector<size_t> at(start.begin(), start.end() - 1);
    for (size_t i = 0; i < n; ++i) {
      const size_t j = at[bin_of[i]]++;
      residual[j] = (correct[i] ? 1.0 : 0.0) - confidence[i];
      member[j] = static_cast<uint32_t>(i);
    }
  }
  auto ece = [&](const auto* counts) {
    double total = 0;
    for (int k = 0; k < num_bins; ++k) {
      // Four running sums: the additions overlap.
      double sum[4] = {0, 0, 0, 0};
      size_t j = start[k];
      for (; j + 4 <= start[k + 1]; j += 4) {
        for (int q = 0; q < 4; ++q)
          sum[q] += counts[member[j + q]] * residual[j + q];
      }
      for (; j < start[k + 1]; ++j) sum[0] += counts[member[j]] * residual[j];
      total += std::abs((sum[0] + sum[1]) + (sum[2] + sum[3]));
    }
    return total / static_cast<double>(n);
  };
  std::vector<double> eces;
  eces.reserve(resamples);
  if (const std::shared_ptr<const DrawTable> table =
          CachedDraws(n, resamples, seed)) {
    for (int r = 0; r < resamples; ++r)
      eces.push_back(ece(table->counts.data() + r * n));
  } else {
    std::vector<int32_t> counts(n);
    uint64_t state = seed;
    for (int r = 0; r < resamples; ++r) {
      DrawCounts(&state, n, counts.data());
      eces.push_back(ece(counts.data()));
    }
  }
  std::sort(eces.begin(), eces.end());
  // Quantiles by linear interpolation (NumPy's default).
  auto quantile = [&](double q) {
    const double pos = q * (eces.size() - 1);
    const size_t lo = static_cast<size_t>(std::floor(pos));
    const size_t hi = std::min(lo + 1, eces.size() - 1);
    return eces[lo] + (pos - lo) * (eces[hi] - eces[lo]);
  };
  out.low = quantile((1 - level) / 2);
  out.high = quantile((1 + level) / 2);
  return out;
}

void SetBootstrapDrawTableBytesForTesting(size_t bytes) {
  std::lock_guard<std::mutex> lock(draw_tables_mu);
  draw_table_bytes = bytes;
}

double ThresholdedAdaptiveEce(absl::Span<const float> probs,
                              absl::Span<const int32_t> labels, int classes,
                              int num_bins, double threshold) {
  const size_t n = labels.size();
  double total = 0;
  int used = 0;
  for (int k = 0; k < classes; ++k) {
    std::vector<float> p;
    std::vector<uint8_t> hit;
    for (size_t i = 0; i < n; ++i) {
      const float v = probs[i * classes + k];
      if (v > threshold) {
        p.push_back(v);
        hit.push_back(labels[i] == k ? 1 : 0);
      }
    }
    if (p.empty()) continue;
    total += AdaptiveEce(p, hit, num_bins);
    ++used;
  }
  return used > 0 ? total / used : 0;
}

}  // namespace mixcal::calib
