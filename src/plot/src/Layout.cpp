#include "Layout.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace tessera::plot {

namespace {

struct Range {
  double lo = 0.0;
  double hi = 1.0;
};

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

double widestLabel(TextMeasure& measure, const Ticks& ticks, double fontSize) {
  double widest = 0.0;
  for (double v : ticks.values) widest = std::max(widest, measure.width(formatTick(v, ticks), fontSize));
  return widest;
}

// As many x ticks as fit without their labels crowding each other.
Ticks fittingXTicks(TextMeasure& measure, const Layout& L, bool integerOnly) {
  const double plotWidth = L.area.width;
  const double span = L.area.xMax - L.area.xMin;
  const double minSpacing = L.sizes.font();
  for (int count = std::max(2, static_cast<int>(plotWidth / (L.text.height() * 4))); count >= 1; --count) {
    Ticks ticks = niceTicks(L.area.xMin, L.area.xMax, count, integerOnly);
    if (ticks.values.size() < 2) return ticks;
    const double spacing = (ticks.values[1] - ticks.values[0]) / span * plotWidth;
    if (spacing >= widestLabel(measure, ticks, L.sizes.font()) + minSpacing) return ticks;
  }
  return niceTicks(L.area.xMin, L.area.xMax, 1, integerOnly);
}

}  // namespace

bool wantsLegend(const std::vector<Series>& series) {
  return std::any_of(series.begin(), series.end(), [](const Series& s) { return !s.label.empty(); });
}

Layout computeLayout(const std::vector<Series>& series, const LinePlotOptions& options) {
  Layout L;
  L.width = options.width;
  L.height = options.height;
  L.sizes = style::Sizes(options.width, options.height);
  const style::Sizes& S = L.sizes;
  TextMeasure measure;
  L.text = measure.metrics(S.font());
  L.title = measure.metrics(S.titleFont(), true);
  L.titleText = printable(options.title);
  L.xLabelText = printable(options.xLabel);
  L.yLabelText = printable(options.yLabel);
  for (const Series& s : series) L.seriesLabels.push_back(printable(s.label));

  const Range x = xRange(series, options.integerXTicks);
  const Range y = yRange(series, options);
  L.area.xMin = x.lo;
  L.area.xMax = x.hi;
  L.area.yMin = y.lo;
  L.area.yMax = y.hi;
  const double frame = S.frameWidth();  // drawn just outside the plot area
  const double textH = L.text.height();

  // Vertical: title, plot, x tick labels, x label.
  double top = S.pad();
  if (!L.titleText.empty()) {
    L.titleBaseline = top + L.title.ascent;
    top += L.title.height() + S.pad();
  }
  top += L.text.cap / 2;  // the topmost y tick label is centred on the frame's top edge
  double bottom = options.height - S.pad();
  if (!L.xLabelText.empty()) {
    L.xLabelBaseline = bottom - L.text.descent;
    bottom -= textH + S.pad();
  }
  bottom -= textH + S.gap() + S.tickLength();  // x tick labels and ticks
  L.area.top = std::ceil(top + frame);
  L.area.height = std::max(1.0, std::floor(bottom - frame) - L.area.top);
  L.yTicks = niceTicks(y.lo, y.hi, std::max(2, static_cast<int>(L.area.height / (textH * 3))), false);

  // Horizontal: y label, y tick labels, plot, legend.
  double left = S.pad();
  if (!L.yLabelText.empty()) {
    L.yLabelBaseline = left + L.text.ascent;
    left += textH + S.pad();
  }
  left += widestLabel(measure, L.yTicks, S.font()) + S.gap() + S.tickLength() + frame;
  L.area.left = std::ceil(left);

  const bool legend = wantsLegend(series);
  double legendW = 0.0;
  if (legend) {
    double widest = 0.0;
    for (const std::string& label : L.seriesLabels) widest = std::max(widest, measure.width(label, S.font()));
    const double fixed = 2 * S.legendInset() + S.legendSwatch() + S.legendSpacing();
    const double maxW = std::max(options.width * 0.3, 12 * S.font());  // longer labels get clipped
    legendW = std::ceil(fixed + std::clamp(maxW - fixed, 0.0, widest));
  }
  L.legendRow = std::round(textH * 1.4);
  const double legendH = 2 * S.legendInset() + static_cast<double>(std::min<size_t>(series.size(), 10000)) * L.legendRow;

  // `overhang`: how far the last x tick label reaches past the plot's right edge.
  const auto placeRight = [&](bool withLegend, double overhang) {
    double right = options.width - S.pad();
    if (withLegend) {
      L.legend = {right - legendW, L.area.top - frame, legendW, std::min(legendH, L.area.height + 2 * frame)};
      right -= legendW;
    } else {
      L.legend = {};
    }
    right -= std::max(withLegend ? S.pad() : 0.0, overhang + S.gap());
    L.area.width = std::max(1.0, std::floor(right - frame) - L.area.left);
    L.xTicks = fittingXTicks(measure, L, options.integerXTicks);
  };
  bool withLegend = legend;
  placeRight(withLegend, 0.0);
  // A legend that would squeeze the data into a sliver is dropped: the curves matter more.
  if (withLegend && L.area.width < options.width * 0.4) {
    withLegend = false;
    placeRight(false, 0.0);
  }
  // The last x tick label is centred on its tick and may hang over the frame; now that it is known,
  // make room for it.
  if (!L.xTicks.values.empty()) {
    const double lastX = L.area.pixelX(L.xTicks.values.back());
    const double labelHalf = measure.width(formatTick(L.xTicks.values.back(), L.xTicks), S.font()) / 2;
    const double overhang = lastX + labelHalf - (L.area.left + L.area.width);
    if (overhang > 0) placeRight(withLegend, overhang);
  }
  return L;
}

}  // namespace tessera::plot
