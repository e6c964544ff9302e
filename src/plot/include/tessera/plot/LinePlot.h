#pragma once
// Line charts written as PNG with nothing but zlib: a small software rasteriser, a built-in bitmap
// font and a minimal PNG encoder. Metric curves (Dice per federation generation for each site) do
// not justify pulling a plotting or imaging stack into the build.

#include <cstdint>
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
  int width = 900;   // pixels, 100..8000
  int height = 540;  // pixels, 100..8000
  // Fixed y-axis ends; an unset end is taken from the data plus a small margin.
  std::optional<double> yMin;
  std::optional<double> yMax;
  bool integerXTicks = true;  // x is usually a generation or epoch number
};

class PlotError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// RGB raster, row-major, 3 bytes per pixel.
struct Raster {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;
};

// Throws PlotError for an empty series list, x/y size mismatches, non-finite values, no points at
// all, yMin >= yMax, or a width/height outside 100..8000.
Raster renderLinePlot(const std::vector<Series>& series, const LinePlotOptions& options);

// 8-bit RGB PNG with a single IDAT chunk. Throws PlotError if the raster's size is inconsistent.
std::string encodePng(const Raster& raster);

// Renders and writes atomically (temporary file in the same directory, fsync, rename), so readers
// never see a half-written PNG. Throws PlotError naming `path` on failure.
void writeLinePlotPng(const std::vector<Series>& series, const LinePlotOptions& options,
                      const std::filesystem::path& path);

}  // namespace tessera::plot
