#pragma once
// Clipped pixel access on a Raster; every drawing routine goes through it so that geometry that
// falls partly (or wholly) outside the image is simply cut off instead of needing checks upstream.

#include <algorithm>
#include <cstdint>

#include "tessera/plot/LinePlot.h"

namespace tessera::plot {

struct Rgb {
  uint8_t r = 0;
  uint8_t g = 0;
  uint8_t b = 0;
  bool operator==(const Rgb&) const = default;
};

// Half-open pixel rectangle [x, x + w) x [y, y + h).
struct Rect {
  int x = 0;
  int y = 0;
  int w = 0;
  int h = 0;

  int right() const { return x + w; }
  int bottom() const { return y + h; }
  bool empty() const { return w <= 0 || h <= 0; }
  bool contains(int px, int py) const { return px >= x && px < right() && py >= y && py < bottom(); }
  Rect intersect(const Rect& o) const {
    const int nx = std::max(x, o.x);
    const int ny = std::max(y, o.y);
    const int nr = std::min(right(), o.right());
    const int nb = std::min(bottom(), o.bottom());
    return {nx, ny, std::max(0, nr - nx), std::max(0, nb - ny)};
  }
};

class Canvas {
 public:
  Canvas(Raster& raster, Rgb background);

  Rect bounds() const { return {0, 0, raster_.width, raster_.height}; }
  void set(int x, int y, Rgb c);
  // alpha in [0, 1]; a coverage-weighted mix gives anti-aliased edges.
  void blend(int x, int y, Rgb c, float alpha);
  void fillRect(const Rect& r, Rgb c);
  // One-pixel outline along the inside of r.
  void strokeRect(const Rect& r, Rgb c);

 private:
  Raster& raster_;
};

}  // namespace tessera::plot
