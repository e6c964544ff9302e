#include "Layout.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "BitmapFont.h"
#include "Legend.h"
#include "Style.h"

namespace tessera::plot {

namespace {

Range dataExtent(const std::vector<Series>& series, bool useX) {
  Range r{std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity()};
  for (const Series& s : series) {
    for (double v : useX ? s.x : s.y) {
      r.lo = std::min(r.lo, v);
      r.hi = std::max(r.hi, v);
    }
  }
  return r;
}

// A single distinct value still needs a visible span around it.
Range widenIfFlat(Range r, double flatHalfSpan) {
  if (r.hi > r.lo) return r;
  const double half = std::max(flatHalfSpan, std::abs(r.lo) * 0.1);
  return {r.lo - half, r.hi + half};
}

Range withMargin(Range r, double fraction) {
  const double m = (r.hi - r.lo) * fraction;
  return {r.lo - m, r.hi + m};
}

void requireMappable(const Range& r, const char* axis) {
  if (!std::isfinite(r.lo) || !std::isfinite(r.hi) || !std::isfinite(r.hi - r.lo) || !(r.hi > r.lo))
    throw PlotError(std::string(axis) + " values span too wide a range to plot: " + std::to_string(r.lo) +
                    " .. " + std::to_string(r.hi));
}

Range xRange(const std::vector<Series>& series, bool integerTicks) {
  // A little room so the first and last markers do not sit on the frame.
  const Range r = withMargin(widenIfFlat(dataExtent(series, true), integerTicks ? 1.0 : 0.5), 0.03);
  requireMappable(r, "x");
  return r;
}

Range yRange(const std::vector<Series>& series, const LinePlotOptions& options) {
  Range r = withMargin(widenIfFlat(dataExtent(series, false), 0.5), 0.05);
  if (options.yMin) r.lo = *options.yMin;
  if (options.yMax) r.hi = *options.yMax;
  // One fixed end on the wrong side of all the data: keep the fixed end, give the other some span.
  if (!(r.hi > r.lo)) {
    const double span = std::max(1.0, std::abs(options.yMin ? r.lo : r.hi) * 0.1);
    if (options.yMin) r.hi = r.lo + span;
    else r.lo = r.hi - span;
  }
  requireMappable(r, "y");
  return r;
}

int widestLabel(const Ticks& ticks, int scale) {
  int widest = 0;
  for (double v : ticks.values) widest = std::max(widest, font::textWidth(formatTick(v, ticks), scale));
  return widest;
}

// As many x ticks as fit without their labels touching.
Ticks fittingXTicks(const Range& range, int plotWidth, int scale, bool integerOnly) {
  const int minSpacing = font::kAdvance * scale * 2;
  for (int count = std::max(2, plotWidth / (font::textHeight(scale) * 4)); count >= 1; --count) {
    Ticks ticks = niceTicks(range.lo, range.hi, count, integerOnly);
    if (ticks.values.size() < 2) return ticks;
    const double spacing = (ticks.values[1] - ticks.values[0]) / (range.hi - range.lo) * plotWidth;
    if (spacing >= widestLabel(ticks, scale) + minSpacing) return ticks;
  }
  return niceTicks(range.lo, range.hi, 1, integerOnly);
}

}  // namespace

Point Layout::toPixel(double xValue, double yValue) const {
  const double px = plot.x + (xValue - x.lo) / (x.hi - x.lo) * plot.w;
  const double py = plot.y + (y.hi - yValue) / (y.hi - y.lo) * plot.h;
  const auto tame = [](double v) { return std::isfinite(v) ? std::clamp(v, -1e7, 1e7) : (v > 0 ? 1e7 : -1e7); };
  return {tame(px), tame(py)};
}

Layout computeLayout(const std::vector<Series>& series, const LinePlotOptions& options) {
  Layout L;
  L.width = options.width;
  L.height = options.height;
  L.scale = style::textScale(options.width, options.height);
  L.titleScale = L.scale == 1 ? 1 : L.scale + 1;
  L.pad = 4 * L.scale;
  L.gap = 2 * L.scale;
  L.tickLength = 3 * L.scale;
  L.x = xRange(series, options.integerXTicks);
  L.y = yRange(series, options);
  const int textH = font::textHeight(L.scale);

  // Vertical: title, plot, x tick labels, x label. The frame occupies the row above and below L.plot.
  int top = L.pad;
  if (!options.title.empty()) {
    L.titleY = top;
    top += font::textHeight(L.titleScale) + L.pad;
  }
  top += textH / 2;  // the topmost y tick label is centred on the frame's top edge
  int bottom = options.height - L.pad;
  if (!options.xLabel.empty()) {
    bottom -= textH;
    L.xLabelY = bottom;
    bottom -= L.pad;
  }
  bottom -= textH + L.gap + L.tickLength + 1;  // x tick labels, ticks; `bottom` is now the frame row
  L.plot.y = top + 1;
  L.plot.h = std::max(1, bottom - L.plot.y);
  L.yTicks = niceTicks(L.y.lo, L.y.hi, std::max(2, L.plot.h / (textH * 4)), false);

  // Horizontal: y label, y tick labels, plot, legend.
  int left = L.pad;
  if (!options.yLabel.empty()) {
    L.yLabelX = left;
    left += textH + L.pad;
  }
  left += widestLabel(L.yTicks, L.scale) + L.gap + L.tickLength;  // `left` is now the frame column
  L.plot.x = left + 1;

  const bool legend = wantsLegend(series);
  const int legendW = legend ? legendWidth(series, L.scale, std::max(options.width * 3 / 10, 40 * L.scale)) : 0;
  // `overhang`: how far the last x tick label reaches past the frame's right edge.
  const auto placeRight = [&](bool withLegend, int overhang) {
    int right = options.width - L.pad;
    if (withLegend) {
      L.legend = {right - legendW, L.plot.y, legendW, std::min(legendHeight(series, L.scale), L.plot.h)};
      right -= legendW;
    } else {
      L.legend = {};
    }
    right -= std::max(withLegend ? L.pad : 0, overhang + L.gap);
    L.plot.w = std::max(1, right - 1 - L.plot.x);  // one column for the frame
    L.xTicks = fittingXTicks(L.x, L.plot.w, L.scale, options.integerXTicks);
  };
  bool withLegend = legend;
  placeRight(withLegend, 0);
  // A legend that would squeeze the data into a sliver is dropped: the curves matter more.
  if (withLegend && L.plot.w < options.width * 2 / 5) {
    withLegend = false;
    placeRight(false, 0);
  }
  // The last x tick label is centred on its tick and may hang over the frame; now that it is known,
  // make room for it.
  if (!L.xTicks.values.empty()) {
    const double lastX = L.toPixel(L.xTicks.values.back(), L.y.lo).x;
    const int labelHalf = font::textWidth(formatTick(L.xTicks.values.back(), L.xTicks), L.scale) / 2;
    const int overhang = static_cast<int>(std::ceil(lastX)) + labelHalf - L.plot.right();
    if (overhang > 0) placeRight(withLegend, overhang);
  }
  return L;
}

}  // namespace tessera::plot
