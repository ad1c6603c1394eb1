// The SVG figures as a paper needs them: one colour per method, axis labels
// as papers write them, whole-number epoch ticks, intervals at one x spread
// apart, reliability diagrams with the metrics clear of the bars and each
// bin's count.

#include "client/plot.h"

#include <regex>
#include <set>
#include <string>

#include "gtest/gtest.h"

namespace mixcal::client {
namespace {

TEST(PlotTest, EachMethodKeepsOneColourAndValuesAreShadesOfIt) {
  EXPECT_EQ(MethodColor("baseline"), "#000000");
  EXPECT_EQ(MethodColor("mixup"), "#1f77b4");
  // The largest of three values is the method's colour; smaller ones lighter.
  EXPECT_EQ(MethodColor("mixup", 2, 3), "#1f77b4");
  EXPECT_NE(MethodColor("mixup", 0, 3), MethodColor("mixup", 1, 3));
  EXPECT_NE(MethodColor("label_smoothing"), MethodColor("erl"));
  EXPECT_EQ(MethodColor("some_new_method"), MethodColor("some_new_method"));
}

TEST(PlotTest, AxisLabelsAsPapersWriteThem) {
  EXPECT_EQ(MetricLabel("ece"), "ECE");
  EXPECT_EQ(MetricLabel("nll"), "NLL");
  EXPECT_EQ(MetricLabel("brier"), "Brier score");
  EXPECT_EQ(MetricLabel("accuracy"), "accuracy");
}

TEST(PlotTest, EpochAxesGetWholeNumberTicks) {
  Series s;
  s.label = "baseline";
  s.x = {1, 2, 3};
  s.y = {0.1, 0.2, 0.15};
  const std::string svg = LinePlot("t", "epoch", "ECE", {s});
  EXPECT_EQ(svg.find(">1.5<"), std::string::npos) << svg;
  EXPECT_EQ(svg.find(">2.5<"), std::string::npos);
  EXPECT_NE(svg.find(">2<"), std::string::npos);
}

TEST(PlotTest, IntervalsOfTwoMethodsAtOneValueDoNotHideEachOther) {
  Series a, b;
  for (Series* s : {&a, &b}) {
    s->markers = true;
    s->x = {0.1};
    s->y = {0.05};
    s->lo = {0.0};
    s->hi = {0.1};
  }
  a.label = "erl";
  b.label = "label_smoothing";
  const std::string svg = LinePlot("t", "value", "ECE difference", {a, b});
  std::regex circle("<circle cx=\"([0-9.]+)\"");
  std::set<std::string> xs;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), circle);
       it != std::sregex_iterator(); ++it)
    xs.insert((*it)[1]);
  EXPECT_EQ(xs.size(), 2u) << svg;
}

TEST(PlotTest, ReliabilityDiagramShowsCountsAndKeepsTheMetricsAboveThePlot) {
  std::vector<Bin> bins(10);
  bins[9] = {1234, 1234 * 0.95, 1000};  // overconfident
  bins[5] = {56, 56 * 0.55, 40};        // underconfident
  const std::string svg =
      ReliabilityPlot("mixup 0.4, seed 0", bins, 0.1, 0.2, 0.05);
  EXPECT_NE(svg.find(">1234<"), std::string::npos) << svg;
  EXPECT_NE(svg.find(">56<"), std::string::npos);
  EXPECT_NE(svg.find("#2ca02c"), std::string::npos);  // an underconfident gap
  // The metrics line sits above the plotting area (which starts at y = 100).
  std::smatch m;
  ASSERT_TRUE(
      std::regex_search(svg, m, std::regex("y=\"([0-9.]+)\"[^>]*>ECE ")));
  EXPECT_LT(std::stod(m[1]), 100);
}

}  // namespace
}  // namespace mixcal::client
