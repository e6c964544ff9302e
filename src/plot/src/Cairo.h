#pragma once
// The library's only contact with Cairo's C API besides drawing calls: owning handles, status
// checks that become PlotError, and the text setup that measuring and drawing must share so that
// the layout's numbers hold for every output format.

#include <cairo.h>

#include <memory>
#include <string>
#include <string_view>

#include "tessera/plot/LinePlot.h"

namespace tessera::plot {

struct SurfaceDeleter {
  void operator()(cairo_surface_t* s) const { cairo_surface_destroy(s); }
};
struct ContextDeleter {
  void operator()(cairo_t* c) const { cairo_destroy(c); }
};
using Surface = std::unique_ptr<cairo_surface_t, SurfaceDeleter>;
using Context = std::unique_ptr<cairo_t, ContextDeleter>;

// Throws PlotError("<what>: <Cairo's reason>") unless status is CAIRO_STATUS_SUCCESS.
void check(cairo_status_t status, std::string_view what);

// A context on `surface` with the chart's font options (grey anti-aliasing, unhinted metrics, so
// text measures the same on image and SVG surfaces). Throws PlotError if Cairo cannot make one.
Context makeContext(cairo_surface_t* surface);

// Selects the chart's typeface at `size` pixels.
void useFont(cairo_t* cr, double size, bool bold = false);

// `text` made safe for Cairo's text API, which needs valid UTF-8: invalid sequences, control
// characters and code points that XML forbids each become '?'.
std::string printable(std::string_view text);

// Advance width of `text` (already printable) in the current font.
double textWidth(cairo_t* cr, const std::string& text);

struct FontMetrics {
  double ascent = 0.0;
  double descent = 0.0;
  double cap = 0.0;  // height of digits and capitals: what to centre on a tick
  double height() const { return ascent + descent; }
};
FontMetrics fontMetrics(cairo_t* cr);

// Measures text for the layout on a private 1x1 image surface.
class TextMeasure {
 public:
  TextMeasure();
  double width(const std::string& text, double size, bool bold = false);
  FontMetrics metrics(double size, bool bold = false);

 private:
  Surface surface_;
  Context cr_;
};

}  // namespace tessera::plot
