#pragma once
// Line charts (metric curves such as Dice per federation round) drawn with Cairo: anti-aliased
// strokes, real fonts ("DejaVu Sans", or whatever sans-serif face fontconfig substitutes), and one
// drawing routine that feeds both PNG and SVG output. Cairo is an implementation detail: no Cairo
// type or header appears here.

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace tessera::plot {

struct Series {
  std::string label;  // shown in the legend; an all-empty set of labels draws no legend
  std::vector<double> x;
  std::vector<double> y;
  bool dashed = false;
};

struct LinePlotOptions {
  std::string title;
  std::string xLabel;
  std::string yLabel;
  int width = 900;   // pixels (SVG: user units), 100..8000
  int height = 540;  // pixels (SVG: user units), 100..8000
  // Fixed y-axis ends; an unset end is taken from the data plus a small margin.
  std::optional<double> yMin;
  std::optional<double> yMax;
  bool integerXTicks = true;  // x is usually a generation or epoch number
};

class PlotError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class ImageFormat { Png, Svg };

// Where the data lands: the plot area (the inside of the axis frame) in image pixels, which are
// also the SVG's user units, and the axis ranges mapped onto it. Pixel (i, j) covers
// [i, i+1) x [j, j+1); y grows downwards. Curves are clipped to this rectangle.
struct PlotArea {
  double left = 0.0;
  double top = 0.0;
  double width = 1.0;
  double height = 1.0;
  double xMin = 0.0;
  double xMax = 1.0;
  double yMin = 0.0;
  double yMax = 1.0;

  double pixelX(double x) const { return left + (x - xMin) / (xMax - xMin) * width; }
  double pixelY(double y) const { return top + (yMax - y) / (yMax - yMin) * height; }
};

// Input rules, shared by everything below; a violation throws PlotError naming the problem:
// - at least one series, and at least one point over all series (a series without points next to
//   others is allowed: it only gets its legend row);
// - x and y of a series have the same length, and every value is finite (NaN or infinity is an
//   error naming the series and the point, not a gap in the line);
// - width and height within 100..8000, yMin and yMax finite and yMin < yMax when both are set.
// Labels may hold any bytes: invalid UTF-8 and control characters are drawn as '?'.

// Lays the chart out without drawing it: the same numbers that rendering uses.
PlotArea linePlotArea(const std::vector<Series>& series, const LinePlotOptions& options);

// The encoded image in memory: an 8-bit RGB PNG, or an SVG 1.1 document (whose <title> and
// <desc> carry the chart's title and series labels as text, since Cairo draws glyphs as shapes).
std::string renderLinePlot(const std::vector<Series>& series, const LinePlotOptions& options, ImageFormat format);

// From the extension, case-insensitively: ".png" or ".svg". Throws PlotError naming `path` otherwise.
ImageFormat imageFormatFor(const std::filesystem::path& path);

// Renders in the format that the extension of `path` names and writes the file atomically
// (temporary file in the same directory, fsync, rename, directory fsync), so readers never see a
// half-written image. Throws PlotError naming `path` for an unknown extension, invalid input or
// a failed write (e.g. a missing directory); nothing is left behind then.
void writeLinePlot(const std::vector<Series>& series, const LinePlotOptions& options,
                   const std::filesystem::path& path);

// The original entry point: writes a PNG whatever the extension of `path`; otherwise as writeLinePlot.
void writeLinePlotPng(const std::vector<Series>& series, const LinePlotOptions& options,
                      const std::filesystem::path& path);

}  // namespace tessera::plot
