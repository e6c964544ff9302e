#pragma once
// The legend box: one row per series with a sample of its stroke and marker, then its label.

#include <vector>

#include "Canvas.h"
#include "Strokes.h"
#include "tessera/plot/LinePlot.h"

namespace tessera::plot {

bool wantsLegend(const std::vector<Series>& series);

// Width of the legend box when it may be at most maxWidth wide (longer labels get clipped).
int legendWidth(const std::vector<Series>& series, int scale, int maxWidth);
// Height for all rows, to be cut down by the caller to what fits.
int legendHeight(const std::vector<Series>& series, int scale);

// Rows that do not fit in `box` are summarised as "+N more" on the last row that does.
void drawLegend(Canvas& canvas, CoverageMask& mask, const std::vector<Series>& series, const Rect& box, int scale);

}  // namespace tessera::plot
