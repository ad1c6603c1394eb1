#ifndef MIXCAL_CLIENT_PLOT_H_
#define MIXCAL_CLIENT_PLOT_H_

// Stand-alone SVG figures (no dependencies): what `mixcal plot` writes.

#include <cstdint>
#include <string>
#include <vector>

namespace mixcal::client {

struct Series {
  std::string label;
  std::vector<double> x, y;
  std::vector<double> lo, hi;  // a band (or error bars) when not empty
  bool dashed = false;
  bool markers = false;  // points with error bars instead of a band
  std::string color;     // "#rrggbb"; empty: the next of a fixed cycle
};

// One colour per method in every figure (baseline black); the `rank`-th of
// `count` hyperparameter values of one method a lighter or darker shade of
// it (the largest value darkest).
std::string MethodColor(const std::string& method, int rank = 0,
                        int count = 1);
// A figure-sized SVG holding only `message` (nothing to draw yet): what the
// dashboard shows instead of a broken image.
std::string MessagePlot(const std::string& message);
// A metric as a paper labels its axis: "ECE", "NLL", "Brier score", ...
std::string MetricLabel(const std::string& metric);

// Lines (with bands or error bars) on shared axes, with a legend. An x axis
// whose values are all whole numbers (epochs) gets whole-number ticks;
// points of several series at one x are spread apart a little so that no
// interval hides another.
std::string LinePlot(const std::string& title, const std::string& x_label,
                     const std::string& y_label,
                     const std::vector<Series>& series);

struct Bin {
  int64_t count = 0;
  double confidence_sum = 0;
  int64_t correct = 0;
};

// A reliability diagram as in Guo et al.: accuracy per confidence bin against
// the diagonal, the gap to each bin's mean confidence drawn (red where the
// bin is overconfident, green where underconfident), the metrics above the
// plot, and below it the histogram of confidences with each bin's count.
std::string ReliabilityPlot(const std::string& title,
                            const std::vector<Bin>& bins, double ece,
                            double mce, double oe);

// The training-time picture of Thulasidasan et al.'s Figure 1: per row (a
// job) and column (an epoch), the bins of one split as bubbles at (mean
// confidence, accuracy), their area the share of examples, against the
// diagonal; below the diagonal is overconfident, above it underconfident.
struct EvolutionPanel {
  uint32_t epoch = 0;
  std::vector<Bin> bins;
  double ece = 0, oe = 0;
};
struct EvolutionRow {
  std::string label;
  std::vector<EvolutionPanel> panels;
};
std::string EvolutionPlot(const std::string& title,
                          const std::vector<EvolutionRow>& rows);

}  // namespace mixcal::client

#endif  // MIXCAL_CLIENT_PLOT_H_
