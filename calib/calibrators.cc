#include "calib/calibrators.h"

#include <algorithm>
#include <utility>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "calib/metrics.h"
#include "calib/order.h"

namespace mixcal::calib {
namespace {

// Each row divided by its sum; a row summing to 0 becomes uniform.
void Renormalise(std::vector<float>* p, int classes) {
  const size_t n = p->size() / classes;
  for (size_t i = 0; i < n; ++i) {
    float* row = p->data() + i * classes;
    double sum = 0;
    for (int k = 0; k < classes; ++k) sum += row[k];
    for (int k = 0; k < classes; ++k)
      row[k] = sum > 0 ? static_cast<float>(row[k] / sum) : 1.0f / classes;
  }
}

std::string Numbers(const std::vector<double>& v) {
  std::vector<std::string> s;
  for (double x : v) s.push_back(absl::StrFormat("%.6g", x));
  return absl::StrCat("[", absl::StrJoin(s, ","), "]");
}

double Sigmoid(double z) { return 1 / (1 + std::exp(-z)); }

double Logit(double c) {
  c = std::clamp(c, 1e-7, 1 - 1e-7);
  return std::log(c / (1 - c));
}

}  // namespace

HistogramBinning FitHistogramBinning(absl::Span<const float> probs,
                                     absl::Span<const int32_t> labels,
                                     int classes, int bins) {
  HistogramBinning h;
  h.classes = classes;
  h.bins = bins;
  h.value.assign(static_cast<size_t>(classes) * bins, 0);
  std::vector<double> count(h.value.size(), 0), hits(h.value.size(), 0);
  for (size_t i = 0; i < labels.size(); ++i) {
    for (int k = 0; k < classes; ++k) {
      const size_t b = static_cast<size_t>(k) * bins +
                       (BinIndex(probs[i * classes + k], bins) - 1);
      count[b] += 1;
      hits[b] += labels[i] == k ? 1 : 0;
    }
  }
  for (int k = 0; k < classes; ++k) {
    for (int b = 0; b < bins; ++b) {
      const size_t j = static_cast<size_t>(k) * bins + b;
      h.value[j] = count[j] > 0 ? hits[j] / count[j] : (b + 0.5) / bins;
    }
  }
  return h;
}

std::vector<float> Apply(const HistogramBinning& c,
                         absl::Span<const float> probs) {
  std::vector<float> out(probs.begin(), probs.end());
  for (size_t j = 0; j < out.size(); ++j) {
    const int k = static_cast<int>(j % c.classes);
    out[j] = static_cast<float>(
        c.value[static_cast<size_t>(k) * c.bins + (BinIndex(probs[j], c.bins) - 1)]);
  }
  Renormalise(&out, c.classes);
  return out;
}

IsotonicCalibration FitIsotonic(absl::Span<const float> probs,
                                absl::Span<const int32_t> labels,
                                int classes) {
  IsotonicCalibration iso;
  iso.classes = classes;
  const size_t n = labels.size();
  std::vector<float> column(n);
  for (int k = 0; k < classes; ++k) {
    // Sort by p_k; equal p_k values are pooled first (their mean target),
    // as scikit-learn does, then pool adjacent violators.
    for (size_t i = 0; i < n; ++i) column[i] = probs[i * classes + k];
    const std::vector<uint32_t> order = StableOrder(column);
    std::vector<double> xs, ys, ws;
    for (size_t i = 0; i < n;) {
      const float x = column[order[i]];
      double sum = 0, w = 0;
      size_t j = i;
      for (; j < n && column[order[j]] == x; ++j) {
        sum += labels[order[j]] == k ? 1 : 0;
        w += 1;
      }
      xs.push_back(x);
      ys.push_back(sum / w);
      ws.push_back(w);
      i = j;
    }
    // Pool adjacent violators over blocks.
    std::vector<double> by, bw;
    std::vector<size_t> bstart;
    for (size_t i = 0; i < ys.size(); ++i) {
      by.push_back(ys[i]);
      bw.push_back(ws[i]);
      bstart.push_back(i);
      while (by.size() > 1 && by[by.size() - 2] > by.back()) {
        const double w = bw[bw.size() - 2] + bw.back();
        const double y =
            (by[by.size() - 2] * bw[bw.size() - 2] + by.back() * bw.back()) / w;
        by.pop_back();
        bw.pop_back();
        bstart.pop_back();
        by.back() = y;
        bw.back() = w;
      }
    }
    std::vector<double> fitted(ys.size());
    for (size_t b = 0; b < by.size(); ++b) {
      const size_t end = b + 1 < bstart.size() ? bstart[b + 1] : ys.size();
      for (size_t i = bstart[b]; i < end; ++i) fitted[i] = by[b];
    }
    // Keep the points where the fitted value changes (and the ends), as
    // scikit-learn's thresholds: interpolation between them is the same.
    std::vector<double> tx, ty;
    for (size_t i = 0; i < xs.size(); ++i) {
      const bool keep = i == 0 || i + 1 == xs.size() ||
                        fitted[i] != fitted[i - 1] || fitted[i] != fitted[i + 1];
      if (keep) {
        tx.push_back(xs[i]);
        ty.push_back(fitted[i]);
      }
    }
    iso.x.push_back(std::move(tx));
    iso.y.push_back(std::move(ty));
  }
  return iso;
}

std::vector<float> Apply(const IsotonicCalibration& c,
                         absl::Span<const float> probs) {
  std::vector<float> out(probs.size());
  const size_t n = probs.size() / c.classes;
  std::vector<float> column(n);
  for (int k = 0; k < c.classes; ++k) {
    const std::vector<double>& x = c.x[k];
    const std::vector<double>& y = c.y[k];
    for (size_t i = 0; i < n; ++i) column[i] = probs[i * c.classes + k];
    // The column in increasing order, the thresholds walked alongside
    // (a third of the time of a binary search per value).
    size_t hi = 0;  // the first threshold above the value
    for (const uint32_t i : StableOrder(column)) {
      const double v = column[i];
      double r;
      if (x.empty() || std::isnan(v)) {
        r = v;
      } else if (v <= x.front()) {
        r = y.front();
      } else if (v >= x.back()) {
        r = y.back();
      } else {
        while (x[hi] <= v) ++hi;
        const size_t lo = hi - 1;
        const double t = (v - x[lo]) / (x[hi] - x[lo]);
        r = y[lo] + t * (y[hi] - y[lo]);
      }
      out[i * c.classes + k] = static_cast<float>(r);
    }
  }
  Renormalise(&out, c.classes);
  return out;
}

namespace {

// The top label's probability replaced by `calibrated(top)`, the others
// keeping their proportions.
template <typename F>
std::vector<float> ReplaceTop(absl::Span<const float> probs, int classes,
                              F calibrated) {
  std::vector<float> out(probs.begin(), probs.end());
  const size_t n = probs.size() / classes;
  for (size_t i = 0; i < n; ++i) {
    float* row = out.data() + i * classes;
    const int best =
        static_cast<int>(std::max_element(row, row + classes) - row);
    const double top = row[best];
    const double q = calibrated(top);
    const double rest = 1 - top;
    for (int k = 0; k < classes; ++k) {
      if (k == best) continue;
      row[k] = rest > 0 ? static_cast<float>(row[k] / rest * (1 - q))
                        : static_cast<float>((1 - q) / (classes - 1));
    }
    row[best] = static_cast<float>(q);
  }
  return out;
}

// Newton's method for logistic regression without regularisation:
// features x (n x d, row-major, with a column of ones for an intercept),
// targets t in {0, 1}; starts from w.
void FitLogistic(const std::vector<double>& x, const std::vector<double>& t,
                 int d, std::vector<double>* w) {
  const size_t n = t.size();
  for (int it = 0; it < 100; ++it) {
    std::vector<double> g(d, 0), h(static_cast<size_t>(d) * d, 0);
    for (size_t i = 0; i < n; ++i) {
      double z = 0;
      for (int j = 0; j < d; ++j) z += (*w)[j] * x[i * d + j];
      const double q = Sigmoid(z), r = q - t[i], s = q * (1 - q);
      for (int j = 0; j < d; ++j) {
        g[j] += r * x[i * d + j];
        for (int l = 0; l < d; ++l)
          h[j * d + l] += s * x[i * d + j] * x[i * d + l];
      }
    }
    // Solve h * step = g by Gaussian elimination with partial pivoting.
    std::vector<double> a = h, b = g;
    bool singular = false;
    for (int c = 0; c < d && !singular; ++c) {
      int p = c;
      for (int r2 = c + 1; r2 < d; ++r2)
        if (std::fabs(a[r2 * d + c]) > std::fabs(a[p * d + c])) p = r2;
      if (std::fabs(a[p * d + c]) < 1e-12) {
        singular = true;
        break;
      }
      for (int l = 0; l < d; ++l) std::swap(a[c * d + l], a[p * d + l]);
      std::swap(b[c], b[p]);
      for (int r2 = c + 1; r2 < d; ++r2) {
        const double f = a[r2 * d + c] / a[c * d + c];
        for (int l = c; l < d; ++l) a[r2 * d + l] -= f * a[c * d + l];
        b[r2] -= f * b[c];
      }
    }
    if (singular) break;
    std::vector<double> step(d);
    for (int c = d - 1; c >= 0; --c) {
      double v = b[c];
      for (int l = c + 1; l < d; ++l) v -= a[c * d + l] * step[l];
      step[c] = v / a[c * d + c];
    }
    double moved = 0;
    for (int j = 0; j < d; ++j) {
      (*w)[j] -= step[j];
      moved += std::fabs(step[j]);
    }
    if (moved < 1e-12) break;
  }
}

}  // namespace

BetaTopLabel FitBetaTopLabel(absl::Span<const float> probs,
                             absl::Span<const int32_t> labels, int classes) {
  const size_t n = labels.size();
  std::vector<double> x(n * 3), t(n);
  for (size_t i = 0; i < n; ++i) {
    const float* row = probs.data() + i * classes;
    const int best =
        static_cast<int>(std::max_element(row, row + classes) - row);
    const double c = std::clamp(static_cast<double>(row[best]), 1e-7, 1 - 1e-7);
    x[3 * i] = std::log(c);
    x[3 * i + 1] = -std::log(1 - c);
    x[3 * i + 2] = 1;
    t[i] = best == labels[i] ? 1 : 0;
  }
  std::vector<double> w = {1, 1, 0};
  FitLogistic(x, t, 3, &w);
  return BetaTopLabel{w[0], w[1], w[2]};
}

std::vector<float> Apply(const BetaTopLabel& c, absl::Span<const float> probs,
                         int classes) {
  return ReplaceTop(probs, classes, [&](double top) {
    const double v = std::clamp(top, 1e-7, 1 - 1e-7);
    return Sigmoid(c.a * std::log(v) - c.b * std::log(1 - v) + c.m);
  });
}

std::string Describe(const BetaTopLabel& c) {
  return absl::StrFormat(
      "{\"calibrator\":\"beta\",\"a\":%.9g,\"b\":%.9g,\"m\":%.9g}", c.a,
      c.b, c.m);
}

PlattTopLabel FitPlattTopLabel(absl::Span<const float> probs,
                               absl::Span<const int32_t> labels, int classes) {
  const size_t n = labels.size();
  std::vector<double> x(n * 2), t(n);
  for (size_t i = 0; i < n; ++i) {
    const float* row = probs.data() + i * classes;
    const int best =
        static_cast<int>(std::max_element(row, row + classes) - row);
    x[2 * i] = Logit(row[best]);
    x[2 * i + 1] = 1;
    t[i] = best == labels[i] ? 1 : 0;
  }
  std::vector<double> w = {1, 0};
  FitLogistic(x, t, 2, &w);
  return PlattTopLabel{w[0], w[1]};
}

std::vector<float> Apply(const PlattTopLabel& c, absl::Span<const float> probs,
                         int classes) {
  return ReplaceTop(probs, classes, [&](double top) {
    return Sigmoid(c.a * Logit(top) + c.b);
  });
}

std::string Describe(const HistogramBinning& c) {
  std::vector<std::string> rows;
  for (int k = 0; k < c.classes; ++k) {
    std::vector<double> v(c.value.begin() + static_cast<size_t>(k) * c.bins,
                          c.value.begin() + static_cast<size_t>(k + 1) * c.bins);
    rows.push_back(Numbers(v));
  }
  return absl::StrCat("{\"calibrator\":\"histogram\",\"bins\":", c.bins,
                      ",\"values\":[", absl::StrJoin(rows, ","), "]}");
}

std::string Describe(const IsotonicCalibration& c) {
  std::vector<std::string> parts;
  for (int k = 0; k < c.classes; ++k)
    parts.push_back(absl::StrCat("{\"x\":", Numbers(c.x[k]), ",\"y\":",
                                 Numbers(c.y[k]), "}"));
  return absl::StrCat("{\"calibrator\":\"isotonic\",\"classes\":[",
                      absl::StrJoin(parts, ","), "]}");
}

std::string Describe(const PlattTopLabel& c) {
  return absl::StrFormat("{\"calibrator\":\"platt\",\"a\":%.9g,\"b\":%.9g}",
                         c.a, c.b);
}

}  // namespace mixcal::calib
