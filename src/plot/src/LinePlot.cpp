#include "tessera/plot/LinePlot.h"

#include <cairo-svg.h>
#include <cairo.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <exception>
#include <string>

#include "Cairo.h"
#include "Draw.h"
#include "Layout.h"
#include "tessera/common/AtomicFile.h"

#if !CAIRO_HAS_PNG_FUNCTIONS || !CAIRO_HAS_SVG_SURFACE
#error "tessera_plot needs a Cairo built with PNG and SVG support"
#endif

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

// Cairo's stream callback: collects the encoded file in memory, so that it can be written atomically.
cairo_status_t appendTo(void* closure, const unsigned char* data, unsigned int length) {
  try {
    static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
    return CAIRO_STATUS_SUCCESS;
  } catch (...) {
    return CAIRO_STATUS_NO_MEMORY;
  }
}

std::string renderPng(const Layout& layout, const std::vector<Series>& series) {
  // RGB24: the chart is opaque, and Cairo then writes an 8-bit RGB PNG without alpha.
  Surface surface(cairo_image_surface_create(CAIRO_FORMAT_RGB24, layout.width, layout.height));
  check(cairo_surface_status(surface.get()), "creating a " + std::to_string(layout.width) + "x" +
                                                 std::to_string(layout.height) + " image");
  {
    Context cr = makeContext(surface.get());
    drawChart(cr.get(), layout, series);
  }
  std::string png;
  check(cairo_surface_write_to_png_stream(surface.get(), appendTo, &png), "encoding the PNG");
  return png;
}

std::string xmlEscaped(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      default: out += c;
    }
  }
  return out;
}

// Cairo writes text as glyph outlines; a <title> and <desc> right after the root element's start
// tag keep the chart's words findable and readable to assistive tools.
std::string withTextDescription(std::string svg, const Layout& L, const std::vector<Series>& series) {
  const size_t root = svg.find("<svg");
  const size_t afterTag = root == std::string::npos ? root : svg.find('>', root);
  if (afterTag == std::string::npos) throw PlotError("Cairo's SVG output has no <svg> element");
  std::string desc = "Line chart";
  if (!L.xLabelText.empty()) desc += "; x: " + L.xLabelText;
  if (!L.yLabelText.empty()) desc += "; y: " + L.yLabelText;
  desc += "; series:";
  for (size_t i = 0; i < series.size(); ++i)
    desc += (i ? "; " : " ") + (L.seriesLabels[i].empty() ? "(unlabelled)" : L.seriesLabels[i]) +
            (series[i].dashed ? " (dashed)" : "");
  std::string text = "\n";
  if (!L.titleText.empty()) text += "<title>" + xmlEscaped(L.titleText) + "</title>\n";
  text += "<desc>" + xmlEscaped(desc) + "</desc>";
  svg.insert(afterTag + 1, text);
  return svg;
}

std::string renderSvg(const Layout& layout, const std::vector<Series>& series) {
  std::string svg;
  {
    Surface surface(cairo_svg_surface_create_for_stream(appendTo, &svg, layout.width, layout.height));
    check(cairo_surface_status(surface.get()), "creating the SVG surface");
    cairo_svg_surface_restrict_to_version(surface.get(), CAIRO_SVG_VERSION_1_1);
    cairo_svg_surface_set_document_unit(surface.get(), CAIRO_SVG_UNIT_PX);  // so 900 wide means 900 pixels
    {
      Context cr = makeContext(surface.get());
      drawChart(cr.get(), layout, series);
    }
    cairo_surface_finish(surface.get());  // writes the document out through appendTo
    check(cairo_surface_status(surface.get()), "writing the SVG");
  }
  return withTextDescription(std::move(svg), layout, series);
}

std::string lowerCase(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

void renderAndWrite(const std::vector<Series>& series, const LinePlotOptions& options,
                    const std::filesystem::path& path, ImageFormat format) {
  std::string bytes;
  try {
    bytes = renderLinePlot(series, options, format);
  } catch (const PlotError& e) {
    throw PlotError(path.string() + ": " + e.what());
  }
  try {
    common::writeFileAtomically(path, bytes);
  } catch (const std::exception& e) {
    throw PlotError(path.string() + ": cannot write the chart: " + e.what());
  }
}

}  // namespace

PlotArea linePlotArea(const std::vector<Series>& series, const LinePlotOptions& options) {
  validate(series, options);
  return computeLayout(series, options).area;
}

std::string renderLinePlot(const std::vector<Series>& series, const LinePlotOptions& options, ImageFormat format) {
  validate(series, options);
  const Layout layout = computeLayout(series, options);
  return format == ImageFormat::Svg ? renderSvg(layout, series) : renderPng(layout, series);
}

ImageFormat imageFormatFor(const std::filesystem::path& path) {
  const std::string extension = lowerCase(path.extension().string());
  if (extension == ".png") return ImageFormat::Png;
  if (extension == ".svg") return ImageFormat::Svg;
  throw PlotError(path.string() + ": unknown image format '" + path.extension().string() +
                  "': the file name must end in .png or .svg");
}

void writeLinePlot(const std::vector<Series>& series, const LinePlotOptions& options,
                   const std::filesystem::path& path) {
  renderAndWrite(series, options, path, imageFormatFor(path));
}

void writeLinePlotPng(const std::vector<Series>& series, const LinePlotOptions& options,
                      const std::filesystem::path& path) {
  renderAndWrite(series, options, path, ImageFormat::Png);
}

}  // namespace tessera::plot
