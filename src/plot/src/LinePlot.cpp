#include "tessera/plot/LinePlot.h"

#include <cmath>
#include <string>

#include "AtomicWrite.h"
#include "Axes.h"
#include "Canvas.h"
#include "Layout.h"
#include "Legend.h"
#include "Strokes.h"
#include "Style.h"

namespace tessera::plot {

namespace {

constexpr int kMinSide = 100;
constexpr int kMaxSide = 8000;

std::string seriesName(const Series& s, size_t index) {
  return "series " + std::to_string(index) + (s.label.empty() ? "" : " ('" + s.label + "')");
}

void validate(const std::vector<Series>& series, const LinePlotOptions& options) {
  if (series.empty()) throw PlotError("line plot: no series to draw");
  const auto checkSide = [](const char* what, int value) {
    if (value < kMinSide || value > kMaxSide)
      throw PlotError(std::string("line plot: ") + what + " " + std::to_string(value) + " is outside " +
                      std::to_string(kMinSide) + ".." + std::to_string(kMaxSide));
  };
  checkSide("width", options.width);
  checkSide("height", options.height);
  if (options.yMin && !std::isfinite(*options.yMin))
    throw PlotError("line plot: yMin is not finite: " + std::to_string(*options.yMin));
  if (options.yMax && !std::isfinite(*options.yMax))
    throw PlotError("line plot: yMax is not finite: " + std::to_string(*options.yMax));
  if (options.yMin && options.yMax && !(*options.yMin < *options.yMax))
    throw PlotError("line plot: yMin " + std::to_string(*options.yMin) + " is not below yMax " +
                    std::to_string(*options.yMax));

  size_t points = 0;
  for (size_t i = 0; i < series.size(); ++i) {
    const Series& s = series[i];
    if (s.x.size() != s.y.size())
      throw PlotError("line plot: " + seriesName(s, i) + " has " + std::to_string(s.x.size()) + " x values but " +
                      std::to_string(s.y.size()) + " y values");
    for (size_t k = 0; k < s.x.size(); ++k) {
      if (!std::isfinite(s.x[k]) || !std::isfinite(s.y[k]))
        throw PlotError("line plot: " + seriesName(s, i) + " point " + std::to_string(k) + " is not finite (x=" +
                        std::to_string(s.x[k]) + ", y=" + std::to_string(s.y[k]) + ")");
    }
    points += s.x.size();
  }
  if (points == 0) throw PlotError("line plot: the series contain no points");
}

// Markers are drawn only for points inside the axis ranges; half a pixel of slack keeps points
// that sit exactly on a fixed yMin/yMax.
bool insidePlot(const Point& p, const Rect& plot) {
  return p.x >= plot.x - 0.5 && p.x <= plot.right() + 0.5 && p.y >= plot.y - 0.5 && p.y <= plot.bottom() + 0.5;
}

void drawSeries(Canvas& canvas, CoverageMask& mask, const Layout& L, const Series& s, Rgb colour) {
  std::vector<Point> points;
  points.reserve(s.x.size());
  for (size_t k = 0; k < s.x.size(); ++k) points.push_back(L.toPixel(s.x[k], s.y[k]));

  std::optional<DashPattern> dash;
  if (s.dashed) dash = DashPattern{style::dashLength(L.scale), style::dashGap(L.scale)};
  mask.addPolyline(points, style::lineHalfWidth(L.scale), dash, L.plot);

  const double radius = style::markerRadius(L.scale);
  const int reach = static_cast<int>(std::ceil(radius)) + 1;
  const Rect markerClip{L.plot.x - reach, L.plot.y - reach, L.plot.w + 2 * reach, L.plot.h + 2 * reach};
  for (const Point& p : points)
    if (insidePlot(p, L.plot)) mask.addDisc(p, radius, markerClip);
  mask.paintAndClear(canvas, colour);
}

}  // namespace

Raster renderLinePlot(const std::vector<Series>& series, const LinePlotOptions& options) {
  validate(series, options);
  const Layout layout = computeLayout(series, options);

  Raster raster;
  raster.width = options.width;
  raster.height = options.height;
  Canvas canvas(raster, style::kBackground);
  CoverageMask mask(raster.width, raster.height);

  drawGrid(canvas, layout);
  drawFrameAndTicks(canvas, layout);
  for (size_t i = 0; i < series.size(); ++i) drawSeries(canvas, mask, layout, series[i], style::seriesColour(i));
  drawTitles(canvas, layout, options);
  drawLegend(canvas, mask, series, layout.legend, layout.scale);
  return raster;
}

void writeLinePlotPng(const std::vector<Series>& series, const LinePlotOptions& options,
                      const std::filesystem::path& path) {
  std::string png;
  try {
    png = encodePng(renderLinePlot(series, options));
  } catch (const PlotError& e) {
    throw PlotError(path.string() + ": " + e.what());
  }
  writeFileAtomically(path, png);
}

}  // namespace tessera::plot
