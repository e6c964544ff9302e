#pragma once
// Where everything goes: data ranges, ticks, and the boxes for title, axes, plot area and legend.
// Measuring and drawing read the same numbers from here, so labels cannot drift from their ticks.

#include <vector>

#include "Canvas.h"
#include "Strokes.h"
#include "Ticks.h"
#include "tessera/plot/LinePlot.h"

namespace tessera::plot {

struct Range {
  double lo = 0.0;
  double hi = 1.0;
};

struct Layout {
  int width = 0;
  int height = 0;
  int scale = 1;       // text scale
  int titleScale = 1;
  int pad = 0;         // outer margin and spacing between blocks
  int gap = 0;         // spacing between a tick and its label
  int tickLength = 0;

  Rect plot;    // inside of the frame; data ranges map onto exactly this box
  Rect legend;  // empty when no series has a label
  int titleY = 0;
  int xLabelY = 0;
  int yLabelX = 0;

  Range x;
  Range y;
  Ticks xTicks;
  Ticks yTicks;

  // Continuous pixel coordinates (pixel i covers [i, i+1)); far-off values are clamped so that
  // later arithmetic stays finite.
  Point toPixel(double xValue, double yValue) const;
};

// Throws PlotError when the data span is too wide to map (e.g. -1e308 .. 1e308).
Layout computeLayout(const std::vector<Series>& series, const LinePlotOptions& options);

}  // namespace tessera::plot
