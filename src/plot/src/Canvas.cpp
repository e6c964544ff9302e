#include "Canvas.h"

#include <cmath>
#include <cstddef>

namespace tessera::plot {

Canvas::Canvas(Raster& raster, Rgb background) : raster_(raster) {
  raster_.rgb.resize(static_cast<size_t>(raster_.width) * static_cast<size_t>(raster_.height) * 3);
  for (size_t i = 0; i < raster_.rgb.size(); i += 3) {
    raster_.rgb[i] = background.r;
    raster_.rgb[i + 1] = background.g;
    raster_.rgb[i + 2] = background.b;
  }
}

void Canvas::set(int x, int y, Rgb c) {
  if (!bounds().contains(x, y)) return;
  uint8_t* p = &raster_.rgb[(static_cast<size_t>(y) * static_cast<size_t>(raster_.width) + x) * 3];
  p[0] = c.r;
  p[1] = c.g;
  p[2] = c.b;
}

void Canvas::blend(int x, int y, Rgb c, float alpha) {
  if (!bounds().contains(x, y) || !(alpha > 0.0f)) return;
  if (alpha >= 1.0f) return set(x, y, c);
  uint8_t* p = &raster_.rgb[(static_cast<size_t>(y) * static_cast<size_t>(raster_.width) + x) * 3];
  const auto mix = [alpha](uint8_t under, uint8_t over) {
    return static_cast<uint8_t>(std::lround(under + (over - under) * alpha));
  };
  p[0] = mix(p[0], c.r);
  p[1] = mix(p[1], c.g);
  p[2] = mix(p[2], c.b);
}

void Canvas::fillRect(const Rect& r, Rgb c) {
  const Rect clipped = r.intersect(bounds());
  for (int y = clipped.y; y < clipped.bottom(); ++y)
    for (int x = clipped.x; x < clipped.right(); ++x) set(x, y, c);
}

void Canvas::strokeRect(const Rect& r, Rgb c) {
  if (r.empty()) return;
  fillRect({r.x, r.y, r.w, 1}, c);
  fillRect({r.x, r.bottom() - 1, r.w, 1}, c);
  fillRect({r.x, r.y, 1, r.h}, c);
  fillRect({r.right() - 1, r.y, 1, r.h}, c);
}

}  // namespace tessera::plot
