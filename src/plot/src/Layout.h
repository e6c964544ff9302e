#pragma once
// Where everything goes: data ranges, ticks, and the boxes for title, axes, plot area and legend.
// Measuring and drawing read the same numbers from here, so labels cannot drift from their ticks,
// and PNG and SVG output share them exactly (text is measured on one private surface).

#include <vector>

#include "Cairo.h"
#include "Style.h"
#include "Ticks.h"
#include "tessera/plot/LinePlot.h"

namespace tessera::plot {

struct Box {
  double x = 0.0;
  double y = 0.0;
  double w = 0.0;
  double h = 0.0;
  bool empty() const { return w <= 0.0 || h <= 0.0; }
  double right() const { return x + w; }
  double bottom() const { return y + h; }
};

struct Layout {
  int width = 0;
  int height = 0;
  style::Sizes sizes{0, 0};
  FontMetrics text;   // tick labels, axis labels, legend
  FontMetrics title;

  PlotArea area;  // whole pixels: left, top, width and height are integers
  Box legend;     // empty when no series has a label or the legend would crowd out the data
  double legendRow = 0.0;
  double titleBaseline = 0.0;
  double xLabelBaseline = 0.0;
  double yLabelBaseline = 0.0;  // x of the rotated y label's baseline

  Ticks xTicks;
  Ticks yTicks;

  // Every text, made printable once (see printable()).
  std::string titleText;
  std::string xLabelText;
  std::string yLabelText;
  std::vector<std::string> seriesLabels;
};

// Expects validated input. Throws PlotError when the data span is too wide to map (e.g. -1e308 .. 1e308).
Layout computeLayout(const std::vector<Series>& series, const LinePlotOptions& options);

bool wantsLegend(const std::vector<Series>& series);

}  // namespace tessera::plot
