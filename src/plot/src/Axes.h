#pragma once
// Everything around the data: grid, frame, ticks with their labels, title and axis labels.

#include "Canvas.h"
#include "Layout.h"
#include "tessera/plot/LinePlot.h"

namespace tessera::plot {

// Drawn under the data.
void drawGrid(Canvas& canvas, const Layout& layout);
// Drawn before the data too, so that markers on the plot's edge stay visible on top of the frame.
void drawFrameAndTicks(Canvas& canvas, const Layout& layout);
void drawTitles(Canvas& canvas, const Layout& layout, const LinePlotOptions& options);

}  // namespace tessera::plot
