#pragma once
// Anti-aliased strokes and discs for one series at a time. Coverage is collected in a mask (the
// maximum per pixel) and painted once, because blending each segment and marker separately would
// darken the soft edges wherever they overlap (at every joint and under every marker).

#include <cstdint>
#include <optional>
#include <vector>

#include "Canvas.h"

namespace tessera::plot {

struct Point {
  double x = 0.0;
  double y = 0.0;
};

struct DashPattern {
  double on = 0.0;
  double off = 0.0;
};

class CoverageMask {
 public:
  CoverageMask(int width, int height);

  // A polyline 2*halfWidth thick with round joins, cut to `clip`. Dashes follow the arc length
  // so that the pattern runs on smoothly across joints.
  void addPolyline(const std::vector<Point>& points, double halfWidth, std::optional<DashPattern> dash,
                   const Rect& clip);
  void addDisc(Point centre, double radius, const Rect& clip);
  // Paints the collected coverage in `colour` and empties the mask for the next series.
  void paintAndClear(Canvas& canvas, Rgb colour);

 private:
  void addSegment(Point a, Point b, double halfWidth, double startLength, const std::optional<DashPattern>& dash,
                  const Rect& clip);
  void cover(int x, int y, double alpha);

  int width_;
  int height_;
  std::vector<uint8_t> alpha_;
  Rect dirty_;  // bounding box of touched pixels, so clearing costs what drawing did
};

}  // namespace tessera::plot
