#include "Strokes.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace tessera::plot {

namespace {

// Pixel index for a coordinate that may lie far outside the image (points beyond a fixed y range).
int floorToInt(double v) { return static_cast<int>(std::floor(std::clamp(v, -1e9, 1e9))); }

double coverageAt(double distance, double radius) { return std::clamp(radius + 0.5 - distance, 0.0, 1.0); }

}  // namespace

CoverageMask::CoverageMask(int width, int height)
    : width_(width), height_(height), alpha_(static_cast<size_t>(width) * static_cast<size_t>(height), 0) {}

void CoverageMask::cover(int x, int y, double alpha) {
  const auto value = static_cast<uint8_t>(std::lround(alpha * 255.0));
  if (value == 0) return;
  uint8_t& cell = alpha_[static_cast<size_t>(y) * static_cast<size_t>(width_) + x];
  cell = std::max(cell, value);
  if (dirty_.empty()) {
    dirty_ = {x, y, 1, 1};
    return;
  }
  const int right = std::max(dirty_.right(), x + 1);
  const int bottom = std::max(dirty_.bottom(), y + 1);
  dirty_.x = std::min(dirty_.x, x);
  dirty_.y = std::min(dirty_.y, y);
  dirty_.w = right - dirty_.x;
  dirty_.h = bottom - dirty_.y;
}

void CoverageMask::addPolyline(const std::vector<Point>& points, double halfWidth, std::optional<DashPattern> dash,
                               const Rect& clip) {
  if (dash && !(dash->on > 0.0 && dash->off >= 0.0)) dash.reset();
  double travelled = 0.0;
  for (size_t i = 1; i < points.size(); ++i) {
    addSegment(points[i - 1], points[i], halfWidth, travelled, dash, clip);
    travelled += std::hypot(points[i].x - points[i - 1].x, points[i].y - points[i - 1].y);
  }
}

void CoverageMask::addSegment(Point a, Point b, double halfWidth, double startLength,
                              const std::optional<DashPattern>& dash, const Rect& clip) {
  const Rect area = clip.intersect({0, 0, width_, height_});
  if (area.empty()) return;
  const double dx = b.x - a.x;
  const double dy = b.y - a.y;
  const double length2 = dx * dx + dy * dy;
  const double length = std::sqrt(length2);
  const double reach = halfWidth + 1.0;  // the anti-aliased fringe lies within one more pixel

  const int rowBegin = std::max(area.y, floorToInt(std::min(a.y, b.y) - reach));
  const int rowEnd = std::min(area.bottom(), floorToInt(std::max(a.y, b.y) + reach) + 1);
  for (int py = rowBegin; py < rowEnd; ++py) {
    const double cy = py + 0.5;
    double left = std::min(a.x, b.x) - reach;
    double right = std::max(a.x, b.x) + reach;
    // Only a band around the line can be reached; restricting each row to it makes the cost
    // proportional to the stroke's area, not to its bounding box.
    if (std::abs(dy) > 1e-9) {
      const double centre = a.x + (cy - a.y) * dx / dy;
      const double half = reach * length / std::abs(dy);
      left = std::max(left, centre - half);
      right = std::min(right, centre + half);
    }
    const int colBegin = std::max(area.x, floorToInt(left));
    const int colEnd = std::min(area.right(), floorToInt(right) + 1);
    for (int px = colBegin; px < colEnd; ++px) {
      const double cx = px + 0.5;
      const double t = length2 > 0.0 ? std::clamp(((cx - a.x) * dx + (cy - a.y) * dy) / length2, 0.0, 1.0) : 0.0;
      const double alpha = coverageAt(std::hypot(cx - (a.x + t * dx), cy - (a.y + t * dy)), halfWidth);
      if (alpha <= 0.0) continue;
      if (dash && std::fmod(startLength + t * length, dash->on + dash->off) >= dash->on) continue;
      cover(px, py, alpha);
    }
  }
}

void CoverageMask::addDisc(Point centre, double radius, const Rect& clip) {
  const Rect area = clip.intersect({0, 0, width_, height_});
  const int rowBegin = std::max(area.y, floorToInt(centre.y - radius - 1.0));
  const int rowEnd = std::min(area.bottom(), floorToInt(centre.y + radius + 1.0) + 1);
  const int colBegin = std::max(area.x, floorToInt(centre.x - radius - 1.0));
  const int colEnd = std::min(area.right(), floorToInt(centre.x + radius + 1.0) + 1);
  for (int py = rowBegin; py < rowEnd; ++py)
    for (int px = colBegin; px < colEnd; ++px)
      cover(px, py, coverageAt(std::hypot(px + 0.5 - centre.x, py + 0.5 - centre.y), radius));
}

void CoverageMask::paintAndClear(Canvas& canvas, Rgb colour) {
  for (int y = dirty_.y; y < dirty_.bottom(); ++y) {
    for (int x = dirty_.x; x < dirty_.right(); ++x) {
      uint8_t& cell = alpha_[static_cast<size_t>(y) * static_cast<size_t>(width_) + x];
      if (cell == 0) continue;
      canvas.blend(x, y, colour, cell / 255.0f);
      cell = 0;
    }
  }
  dirty_ = {};
}

}  // namespace tessera::plot
