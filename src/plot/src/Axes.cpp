#include "Axes.h"

#include <algorithm>
#include <cmath>

#include "BitmapFont.h"
#include "Style.h"

namespace tessera::plot {

namespace {

int pixelRow(const Layout& L, double yValue) {
  const int row = static_cast<int>(std::floor(L.toPixel(L.x.lo, yValue).y));
  return std::clamp(row, L.plot.y - 1, L.plot.bottom());
}

int pixelColumn(const Layout& L, double xValue) {
  const int column = static_cast<int>(std::floor(L.toPixel(xValue, L.y.lo).x));
  return std::clamp(column, L.plot.x - 1, L.plot.right());
}

// Start position that centres `length` on `centre`, pulled inside [lo, hi) while it fits there;
// text too long for the space starts at lo and is clipped at hi.
int centredStart(int centre, int length, int lo, int hi) {
  if (length >= hi - lo) return lo;
  return std::clamp(centre - length / 2, lo, hi - length);
}

}  // namespace

void drawGrid(Canvas& canvas, const Layout& L) {
  // Grid lines next to the frame would just thicken it.
  for (double v : L.yTicks.values) {
    const int row = pixelRow(L, v);
    if (row > L.plot.y && row < L.plot.bottom() - 1) canvas.fillRect({L.plot.x, row, L.plot.w, 1}, style::kGrid);
  }
  for (double v : L.xTicks.values) {
    const int column = pixelColumn(L, v);
    if (column > L.plot.x && column < L.plot.right() - 1)
      canvas.fillRect({column, L.plot.y, 1, L.plot.h}, style::kGrid);
  }
}

void drawFrameAndTicks(Canvas& canvas, const Layout& L) {
  canvas.strokeRect({L.plot.x - 1, L.plot.y - 1, L.plot.w + 2, L.plot.h + 2}, style::kAxis);
  const int capH = font::capHeight(L.scale);
  const Rect all = canvas.bounds();

  for (double v : L.yTicks.values) {
    const int row = pixelRow(L, v);
    const int tickLeft = L.plot.x - 1 - L.tickLength;
    canvas.fillRect({tickLeft, row, L.tickLength, 1}, style::kAxis);
    const std::string label = formatTick(v, L.yTicks);
    const int x = tickLeft - L.gap - font::textWidth(label, L.scale);
    font::drawText(canvas, x, row - capH / 2, label, L.scale, style::kText, all);
  }
  for (double v : L.xTicks.values) {
    const int column = pixelColumn(L, v);
    const int tickTop = L.plot.bottom() + 1;
    canvas.fillRect({column, tickTop, 1, L.tickLength}, style::kAxis);
    const std::string label = formatTick(v, L.xTicks);
    const int x = column - font::textWidth(label, L.scale) / 2;
    font::drawText(canvas, x, tickTop + L.tickLength + L.gap, label, L.scale, style::kText, all);
  }
}

void drawTitles(Canvas& canvas, const Layout& L, const LinePlotOptions& options) {
  const int lo = L.pad;
  const int hi = L.width - L.pad;
  const Rect textArea{lo, 0, hi - lo, L.height};
  const int plotCentre = L.plot.x + L.plot.w / 2;

  if (!options.title.empty()) {
    const int x = centredStart(plotCentre, font::textWidth(options.title, L.titleScale), lo, hi);
    font::drawText(canvas, x, L.titleY, options.title, L.titleScale, style::kText, textArea);
  }
  if (!options.xLabel.empty()) {
    const int x = centredStart(plotCentre, font::textWidth(options.xLabel, L.scale), lo, hi);
    font::drawText(canvas, x, L.xLabelY, options.xLabel, L.scale, style::kText, textArea);
  }
  if (!options.yLabel.empty()) {
    // Rotated: runs upwards, so centre it on the plot's height and clip it to the plot's rows.
    const int length = font::textWidth(options.yLabel, L.scale);
    const int top = centredStart(L.plot.y + L.plot.h / 2, length, L.plot.y, L.plot.bottom());
    const Rect column{L.yLabelX, L.plot.y, font::textHeight(L.scale), L.plot.h};
    font::drawTextUp(canvas, L.yLabelX, top + std::min(length, L.plot.h) - 1, options.yLabel, L.scale,
                     style::kText, column);
  }
}

}  // namespace tessera::plot
