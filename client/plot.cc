#include "client/plot.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace mixcal::client {
namespace {

const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                         "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string Tick(double v) {
  return absl::StrFormat("%g", std::abs(v) < 1e-12 ? 0.0 : v);
}

// "Nice" tick step for a range.
double Step(double span) {
  if (span <= 0) return 1;
  double raw = span / 5, mag = std::pow(10, std::floor(std::log10(raw)));
  double r = raw / mag;
  return (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
}

struct Frame {
  double x0, y0, w, h;  // pixel box of the plotting area
  double xmin, xmax, ymin, ymax;
  bool integer_x = false;  // whole-number ticks only (epochs)
  double X(double v) const { return x0 + (v - xmin) / (xmax - xmin) * w; }
  double Y(double v) const { return y0 + h - (v - ymin) / (ymax - ymin) * h; }
};

std::string Axes(const Frame& f, const std::string& x_label,
                 const std::string& y_label) {
  std::string s = absl::StrFormat(
      "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
      "fill=\"none\" stroke=\"#333\"/>\n",
      f.x0, f.y0, f.w, f.h);
  double xs = Step(f.xmax - f.xmin);
  if (f.integer_x) xs = std::max(1.0, std::round(xs));
  const double ys = Step(f.ymax - f.ymin);
  for (double v = std::ceil(f.xmin / xs) * xs; v <= f.xmax + 1e-9 * xs;
       v += xs) {
    absl::StrAppendFormat(&s,
                          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
                          "y2=\"%.1f\" stroke=\"#ddd\"/>\n"
                          "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" "
                          "text-anchor=\"middle\">%s</text>\n",
                          f.X(v), f.y0, f.X(v), f.y0 + f.h, f.X(v),
                          f.y0 + f.h + 15, Tick(v));
  }
  for (double v = std::ceil(f.ymin / ys) * ys; v <= f.ymax + 1e-9 * ys;
       v += ys) {
    absl::StrAppendFormat(&s,
                          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
                          "y2=\"%.1f\" stroke=\"#ddd\"/>\n"
                          "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" "
                          "text-anchor=\"end\">%s</text>\n",
                          f.x0, f.Y(v), f.x0 + f.w, f.Y(v), f.x0 - 6,
                          f.Y(v) + 4, Tick(v));
  }
  absl::StrAppendFormat(
      &s,
      "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" "
      "text-anchor=\"middle\">%s</text>\n"
      "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" text-anchor=\"middle\" "
      "transform=\"rotate(-90 %.1f %.1f)\">%s</text>\n",
      f.x0 + f.w / 2, f.y0 + f.h + 36, Escape(x_label), f.x0 - 48,
      f.y0 + f.h / 2, f.x0 - 48, f.y0 + f.h / 2, Escape(y_label));
  return s;
}

std::string Header(int w, int h, const std::string& title) {
  // A long title shrinks to fit the width (about 0.55 em a character).
  int chars = 0;
  for (unsigned char c : title) chars += (c & 0xC0) != 0x80;
  const double size =
      std::min(16.0, std::max(9.0, (w - 20) / (0.55 * std::max(chars, 1))));
  return absl::StrFormat(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
      "viewBox=\"0 0 %d %d\" "
      "font-family=\"sans-serif\">\n<rect width=\"100%%\" height=\"100%%\" "
      "fill=\"white\"/>\n"
      "<text x=\"%d\" y=\"24\" font-size=\"%.1f\" "
      "text-anchor=\"middle\">%s</text>\n",
      w, h, w, h, w / 2, size, Escape(title));
}

int HexDigit(char c) {
  return c >= 'a' ? c - 'a' + 10 : c >= 'A' ? c - 'A' + 10 : c - '0';
}

}  // namespace

std::string MethodColor(const std::string& method, int rank, int count) {
  static const std::map<std::string, std::string>* kByMethod =
      new std::map<std::string, std::string>{
          {"baseline", "#000000"},        {"mixup", "#1f77b4"},
          {"feature_mixup", "#17becf"},   {"label_smoothing", "#2ca02c"},
          {"erl", "#ff7f0e"},             {"focal", "#9467bd"},
          {"cutmix", "#8c564b"},          {"regmixup", "#e377c2"},
          {"manifold_mixup", "#bcbd22"},  {"mmce", "#d62728"}};
  auto it = kByMethod->find(method);
  std::string base = it != kByMethod->end() ? it->second : "#7f7f7f";
  if (it == kByMethod->end()) {  // an unknown name: a stable pick
    size_t h = std::hash<std::string>()(method);
    base = kColors[h % 10];
  }
  if (count <= 1 || method == "baseline") return base;
  // Lightest for the smallest value, the method's own colour for the
  // largest.
  const double t = 0.6 * (1.0 - static_cast<double>(rank) / (count - 1));
  std::string out = "#";
  for (int i = 0; i < 3; ++i) {
    const int v = HexDigit(base[1 + 2 * i]) * 16 + HexDigit(base[2 + 2 * i]);
    absl::StrAppendFormat(&out, "%02x",
                          static_cast<int>(std::lround(v + (255 - v) * t)));
  }
  return out;
}

std::string MetricLabel(const std::string& metric) {
  static const std::map<std::string, std::string>* kLabels =
      new std::map<std::string, std::string>{
          {"ece", "ECE"},
          {"mce", "MCE"},
          {"oe", "overconfidence error (OE)"},
          {"nll", "NLL"},
          {"brier", "Brier score"},
          {"accuracy", "accuracy"},
          {"adaptive_ece", "adaptive ECE"},
          {"classwise_ece", "classwise ECE"},
          {"mean_confidence", "mean confidence"},
          {"mean_entropy", "mean entropy"},
          {"auroc", "AUROC"},
          {"aupr", "AUPR"},
          {"aurc", "AURC"},
          {"fpr95", "FPR at 95% TPR"},
          {"mmce", "MMCE"},
          {"tace", "TACE"},
          {"rmsce", "RMSCE"},
          {"smece", "smooth ECE"},
          {"temperature", "temperature"},
          {"train_loss", "training loss"},
          {"train_accuracy", "training accuracy"},
          {"lr", "learning rate"}};
  auto it = kLabels->find(metric);
  return it != kLabels->end() ? it->second : metric;
}

std::string MessagePlot(const std::string& message) {
  return Header(760, 120, "") +
         absl::StrFormat("<text x=\"380\" y=\"64\" font-size=\"14\" "
                         "fill=\"#555\" text-anchor=\"middle\">%s</text>\n",
                         Escape(message)) +
         "</svg>\n";
}

std::string LinePlot(const std::string& title, const std::string& x_label,
                     const std::string& y_label,
                     const std::vector<Series>& series) {
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  for (const Series& s : series) {
    for (size_t i = 0; i < s.x.size(); ++i) {
      xmin = std::min(xmin, s.x[i]);
      xmax = std::max(xmax, s.x[i]);
      ymin = std::min(ymin, s.lo.empty() ? s.y[i] : s.lo[i]);
      ymax = std::max(ymax, s.hi.empty() ? s.y[i] : s.hi[i]);
    }
  }
  if (!std::isfinite(xmin)) xmin = 0, xmax = 1, ymin = 0, ymax = 1;
  if (xmax - xmin < 1e-12) xmin -= 0.5, xmax += 0.5;
  // Points with error bars need room at the edges.
  if (std::any_of(series.begin(), series.end(),
                  [](const Series& s) { return s.markers; })) {
    const double xpad = (xmax - xmin) * 0.06;
    xmin -= xpad;
    xmax += xpad;
  }
  if (ymax - ymin < 1e-12) ymin -= 0.01, ymax += 0.01;
  const double pad = (ymax - ymin) * 0.05;
  // Non-negative data keeps 0 as its floor; differences may go below it.
  ymin = ymin >= 0 ? std::max(0.0, ymin - pad) : ymin - pad;
  ymax += pad;
  // Wide enough for the longest legend entry (12 px text, about 7 px a
  // character).
  size_t longest = 0;
  for (const Series& s : series) longest = std::max(longest, s.label.size());
  const int width = std::max(760, 602 + static_cast<int>(7 * longest) + 12);
  const int height = 460;
  Frame f{70, 40, 480, 360, xmin, xmax, ymin, ymax};
  f.integer_x = true;
  for (const Series& s : series)
    for (double x : s.x)
      if (std::abs(x - std::round(x)) > 1e-9) f.integer_x = false;
  std::string svg = Header(width, height, title) + Axes(f, x_label, y_label);
  // Marker series are dodged: each its own small offset around the true x.
  std::vector<const Series*> marked;
  for (const Series& s : series)
    if (s.markers) marked.push_back(&s);
  for (size_t k = 0; k < series.size(); ++k) {
    const Series& s = series[k];
    const std::string color = s.color.empty() ? kColors[k % 10] : s.color;
    double dodge = 0;
    if (s.markers && marked.size() > 1) {
      const size_t i =
          std::find(marked.begin(), marked.end(), &s) - marked.begin();
      dodge = (static_cast<double>(i) - (marked.size() - 1) / 2.0) * 6.0;
    }
    if (!s.lo.empty() && !s.markers && s.x.size() > 1) {
      std::string pts;
      for (size_t i = 0; i < s.x.size(); ++i)
        absl::StrAppendFormat(&pts, "%.1f,%.1f ", f.X(s.x[i]), f.Y(s.hi[i]));
      for (size_t i = s.x.size(); i-- > 0;)
        absl::StrAppendFormat(&pts, "%.1f,%.1f ", f.X(s.x[i]), f.Y(s.lo[i]));
      absl::StrAppendFormat(&svg,
                            "<polygon points=\"%s\" fill=\"%s\" "
                            "fill-opacity=\"0.18\" stroke=\"none\"/>\n",
                            pts, color);
    }
    std::string pts;
    for (size_t i = 0; i < s.x.size(); ++i)
      absl::StrAppendFormat(&pts, "%.1f,%.1f ", f.X(s.x[i]) + dodge,
                            f.Y(s.y[i]));
    absl::StrAppendFormat(&svg,
                          "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" "
                          "stroke-width=\"2\"%s/>\n",
                          pts, color,
                          s.dashed ? " stroke-dasharray=\"6,4\"" : "");
    if (s.markers) {
      for (size_t i = 0; i < s.x.size(); ++i) {
        absl::StrAppendFormat(
            &svg, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n",
            f.X(s.x[i]) + dodge, f.Y(s.y[i]), color);
        if (!s.lo.empty()) {
          absl::StrAppendFormat(&svg,
                                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
                                "y2=\"%.1f\" stroke=\"%s\"/>\n",
                                f.X(s.x[i]) + dodge, f.Y(s.lo[i]),
                                f.X(s.x[i]) + dodge, f.Y(s.hi[i]), color);
        }
      }
    }
    const double ly = 50 + 20 * k;
    absl::StrAppendFormat(
        &svg,
        "<line x1=\"570\" y1=\"%.1f\" x2=\"595\" y2=\"%.1f\" stroke=\"%s\" "
        "stroke-width=\"2\"%s/>\n"
        "<text x=\"602\" y=\"%.1f\" font-size=\"12\">%s</text>\n",
        ly, ly, color, s.dashed ? " stroke-dasharray=\"6,4\"" : "", ly + 4,
        Escape(s.label));
  }
  return svg + "</svg>\n";
}

std::string ReliabilityPlot(const std::string& title,
                            const std::vector<Bin>& bins, double ece,
                            double mce, double oe) {
  const int width = 560, height = 690;
  const int m = static_cast<int>(bins.size());
  int64_t total = 0, most = 1;
  for (const Bin& b : bins) {
    total += b.count;
    most = std::max(most, b.count);
  }
  // The legend and the metrics between the title and the plot, where no
  // bar can be; a second line of the title (after "\n") goes under them.
  const size_t nl = title.find('\n');
  std::string svg = Header(width, height, title.substr(0, nl));
  if (nl != std::string::npos) {
    absl::StrAppendFormat(&svg,
                          "<text x=\"70\" y=\"88\" font-size=\"11\" "
                          "fill=\"#555\">%s</text>\n",
                          Escape(title.substr(nl + 1)));
  }
  absl::StrAppendFormat(
      &svg,
      "<rect x=\"70\" y=\"40\" width=\"12\" height=\"12\" fill=\"#1f77b4\"/>"
      "<text x=\"88\" y=\"50\" font-size=\"12\">accuracy</text>\n"
      "<rect x=\"170\" y=\"40\" width=\"12\" height=\"12\" fill=\"#eb9394\" "
      "stroke=\"#d62728\"/>"
      "<text x=\"188\" y=\"50\" font-size=\"12\">gap: overconfident</text>\n"
      "<rect x=\"320\" y=\"40\" width=\"12\" height=\"12\" fill=\"#96d096\" "
      "stroke=\"#2ca02c\"/>"
      "<text x=\"338\" y=\"50\" font-size=\"12\">gap: underconfident</text>\n"
      "<text x=\"70\" y=\"72\" font-size=\"12\">ECE %.4f   MCE %.4f   OE %.4f"
      "   (%d bins, %lld examples)</text>\n",
      ece, mce, oe, m, static_cast<long long>(total));
  Frame top{70, 100, 440, 380, 0, 1, 0, 1};
  svg += Axes(top, "confidence", "accuracy");
  // The diagonal: perfect calibration.
  absl::StrAppendFormat(
      &svg,
      "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#555\" "
      "stroke-dasharray=\"5,4\"/>\n",
      top.X(0), top.Y(0), top.X(1), top.Y(1));
  for (int i = 0; i < m; ++i) {
    const Bin& b = bins[i];
    const double lo = static_cast<double>(i) / m,
                 hi = static_cast<double>(i + 1) / m;
    if (b.count == 0) continue;
    const double acc = static_cast<double>(b.correct) / b.count,
                 conf = b.confidence_sum / b.count;
    absl::StrAppendFormat(&svg,
                          "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                          "height=\"%.1f\" fill=\"#1f77b4\" "
                          "stroke=\"#0b3d63\"><title>bin %d: accuracy %.3f, "
                          "confidence %.3f, %lld "
                          "examples</title></rect>\n",
                          top.X(lo), top.Y(acc), top.X(hi) - top.X(lo),
                          top.Y(0) - top.Y(acc), i + 1, acc, conf,
                          static_cast<long long>(b.count));
    // The gap between the bin's accuracy and its mean confidence: red when
    // the bin is overconfident, green when underconfident.
    // Opaque, so that a gap drawn over the bar (underconfident) has the
    // legend's colour too.
    const bool over = conf > acc;
    absl::StrAppendFormat(&svg,
                          "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                          "height=\"%.1f\" fill=\"%s\" stroke=\"%s\"/>\n",
                          top.X(lo), top.Y(std::max(acc, conf)),
                          top.X(hi) - top.X(lo),
                          std::abs(top.Y(acc) - top.Y(conf)),
                          over ? "#eb9394" : "#96d096",
                          over ? "#d62728" : "#2ca02c");
  }
  // The confidence histogram, each bar with its count.
  Frame bottom{
      70, 540, 440, 100,
      0,  1,   0,   1.15 * static_cast<double>(most) / std::max<int64_t>(total, 1)};
  svg += Axes(bottom, "confidence", "fraction");
  for (int i = 0; i < m; ++i) {
    const double lo = static_cast<double>(i) / m,
                 hi = static_cast<double>(i + 1) / m;
    const double frac =
        static_cast<double>(bins[i].count) / std::max<int64_t>(total, 1);
    absl::StrAppendFormat(&svg,
                          "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                          "height=\"%.1f\" fill=\"#7f7f7f\" "
                          "stroke=\"white\"/>\n",
                          bottom.X(lo), bottom.Y(frac),
                          bottom.X(hi) - bottom.X(lo),
                          bottom.Y(0) - bottom.Y(frac));
    if (bins[i].count > 0) {
      absl::StrAppendFormat(&svg,
                            "<text x=\"%.1f\" y=\"%.1f\" font-size=\"8\" "
                            "text-anchor=\"middle\">%lld</text>\n",
                            (bottom.X(lo) + bottom.X(hi)) / 2,
                            bottom.Y(frac) - 2,
                            static_cast<long long>(bins[i].count));
    }
  }
  return svg + "</svg>\n";
}

std::string EvolutionPlot(const std::string& title,
                          const std::vector<EvolutionRow>& rows) {
  size_t cols = 1;
  for (const EvolutionRow& r : rows) cols = std::max(cols, r.panels.size());
  // A row: its label, then the panels' titles, then the panels.
  const double side = 210, gap_x = 40, gap_y = 100, left = 70, top = 50;
  const int width = static_cast<int>(left + cols * (side + gap_x) + 10);
  const int height = static_cast<int>(top + rows.size() * (side + gap_y) + 10);
  std::string svg = Header(width, height, title);
  for (size_t r = 0; r < rows.size(); ++r) {
    const EvolutionRow& row = rows[r];
    const double y0 = top + r * (side + gap_y) + 48;
    absl::StrAppendFormat(&svg,
                          "<text x=\"%.1f\" y=\"%.1f\" font-size=\"14\" "
                          "font-weight=\"bold\">%s</text>\n",
                          left - 50, y0 - 26, Escape(row.label));
    for (size_t c = 0; c < row.panels.size(); ++c) {
      const EvolutionPanel& p = row.panels[c];
      Frame f{left + c * (side + gap_x), y0, side, side, 0, 1, 0, 1};
      svg += Axes(f, "confidence", c == 0 ? "accuracy" : "");
      absl::StrAppendFormat(
          &svg,
          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
          "stroke=\"#555\" stroke-dasharray=\"5,4\"/>\n",
          f.X(0), f.Y(0), f.X(1), f.Y(1));
      int64_t total = 0;
      for (const Bin& b : p.bins) total += b.count;
      for (size_t i = 0; i < p.bins.size(); ++i) {
        const Bin& b = p.bins[i];
        if (b.count == 0) continue;
        const double acc = static_cast<double>(b.correct) / b.count,
                     conf = b.confidence_sum / b.count,
                     share = static_cast<double>(b.count) / total;
        // Area proportional to the share: a bin holding everything has
        // radius 28 px.
        const double radius = std::max(1.5, 28 * std::sqrt(share));
        const char* color = conf > acc ? "#d62728" : "#1f77b4";
        absl::StrAppendFormat(
            &svg,
            "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\" "
            "fill-opacity=\"0.45\" stroke=\"%s\"><title>bin %d: "
            "confidence %.3f, accuracy %.3f, %.1f%% of examples</title>"
            "</circle>\n",
            f.X(conf), f.Y(acc), radius, color, color, static_cast<int>(i + 1),
            conf, acc, 100 * share);
      }
      // The panel's title from its left edge, over the bubbles with a white
      // halo: a large bin near (1, 1) reaches above the frame's right end.
      absl::StrAppendFormat(
          &svg,
          "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" "
          "stroke=\"white\" stroke-width=\"4\" "
          "paint-order=\"stroke\">epoch %u: ECE %.3f, OE %.3f</text>\n",
          f.x0, f.y0 - 6, p.epoch, p.ece, p.oe);
    }
  }
  absl::StrAppendFormat(
      &svg,
      "<circle cx=\"%.1f\" cy=\"%d\" r=\"5\" fill=\"#d62728\" "
      "fill-opacity=\"0.45\" stroke=\"#d62728\"/><text x=\"%.1f\" y=\"%d\" "
      "font-size=\"12\">overconfident bin (confidence &gt; accuracy)</text>\n"
      "<circle cx=\"%.1f\" cy=\"%d\" r=\"5\" fill=\"#1f77b4\" "
      "fill-opacity=\"0.45\" stroke=\"#1f77b4\"/><text x=\"%.1f\" y=\"%d\" "
      "font-size=\"12\">underconfident bin; area = share of "
      "examples</text>\n",
      left, 44, left + 10, 48, left + 330, 44, left + 340, 48);
  return svg + "</svg>\n";
}

}  // namespace mixcal::client
