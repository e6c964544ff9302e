#pragma once
// The one drawing routine behind every output format: it only talks to a cairo_t, whatever
// surface (image for PNG, SVG) lies underneath.

#include <cairo.h>

#include <vector>

#include "Layout.h"
#include "tessera/plot/LinePlot.h"

namespace tessera::plot {

// Background, grid, frame with ticks and their labels, the series (clipped to the plot area, with
// a marker on every point inside it), title and axis labels, legend. Throws PlotError if Cairo
// reports an error afterwards.
void drawChart(cairo_t* cr, const Layout& layout, const std::vector<Series>& series);

}  // namespace tessera::plot
