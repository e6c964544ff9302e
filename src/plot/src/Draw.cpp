#include "Draw.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

namespace tessera::plot {

namespace {

struct Point {
  double x = 0.0;
  double y = 0.0;
  bool operator==(const Point&) const = default;
};

void setColour(cairo_t* cr, style::Rgb c) { cairo_set_source_rgb(cr, c.r / 255.0, c.g / 255.0, c.b / 255.0); }

// Centre for a line `width` whole pixels wide near coordinate v, so that it covers whole pixel
// rows (or columns) and stays crisp instead of smearing over two half-covered ones.
double crisp(double v, double width) {
  return std::lround(width) % 2 == 1 ? std::floor(v) + 0.5 : std::round(v);
}

// Start position that centres `length` on `centre`, pulled inside [lo, hi) while it fits there;
// text too long for the space starts at lo and is clipped at hi.
double centredStart(double centre, double length, double lo, double hi) {
  if (length >= hi - lo) return lo;
  return std::clamp(centre - length / 2, lo, hi - length);
}

void clipTo(cairo_t* cr, const Box& b) {
  cairo_rectangle(cr, b.x, b.y, b.w, b.h);
  cairo_clip(cr);
}

Box plotBox(const Layout& L) { return {L.area.left, L.area.top, L.area.width, L.area.height}; }

// Data to pixels, with far-off values pulled in to where Cairo's fixed-point coordinates still
// work; the visible part of a line moves by far less than a pixel.
Point toPixel(const Layout& L, double x, double y) {
  const auto tame = [](double v) { return std::clamp(v, -1e9, 1e9); };
  return {tame(L.area.pixelX(x)), tame(L.area.pixelY(y))};
}

// Liang-Barsky: cuts segment a-b to `box`; false if nothing of it lies inside.
bool clipSegment(Point& a, Point& b, const Box& box) {
  const double dx = b.x - a.x;
  const double dy = b.y - a.y;
  const double p[4] = {-dx, dx, -dy, dy};
  const double q[4] = {a.x - box.x, box.right() - a.x, a.y - box.y, box.bottom() - a.y};
  double t0 = 0.0;
  double t1 = 1.0;
  for (int i = 0; i < 4; ++i) {
    if (p[i] == 0.0) {
      if (q[i] < 0.0) return false;
      continue;
    }
    const double t = q[i] / p[i];
    if (p[i] < 0.0) t0 = std::max(t0, t);
    else t1 = std::min(t1, t);
    if (t0 > t1) return false;
  }
  const Point start = a;
  if (t0 > 0.0) a = {start.x + t0 * dx, start.y + t0 * dy};
  if (t1 < 1.0) b = {start.x + t1 * dx, start.y + t1 * dy};
  return true;
}

void strokeStyle(cairo_t* cr, const style::Sizes& S, bool dashed) {
  cairo_set_line_width(cr, S.lineWidth());
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  if (dashed) {
    const double pattern[2] = {S.dashOn(), S.dashOff()};
    cairo_set_dash(cr, pattern, 2, 0.0);
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_BUTT);  // round caps would eat into the gaps
  } else {
    cairo_set_dash(cr, nullptr, 0, 0.0);
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
  }
}

void drawGrid(cairo_t* cr, const Layout& L) {
  const Box p = plotBox(L);
  const double w = L.sizes.gridWidth();
  cairo_set_line_width(cr, w);
  cairo_set_line_cap(cr, CAIRO_LINE_CAP_BUTT);
  setColour(cr, style::kGrid);
  // Grid lines next to the frame would just thicken it.
  for (double v : L.yTicks.values) {
    const double y = crisp(L.area.pixelY(v), w);
    if (y - w / 2 < p.y + 1 || y + w / 2 > p.bottom() - 1) continue;
    cairo_move_to(cr, p.x, y);
    cairo_line_to(cr, p.right(), y);
  }
  for (double v : L.xTicks.values) {
    const double x = crisp(L.area.pixelX(v), w);
    if (x - w / 2 < p.x + 1 || x + w / 2 > p.right() - 1) continue;
    cairo_move_to(cr, x, p.y);
    cairo_line_to(cr, x, p.bottom());
  }
  cairo_stroke(cr);
}

void drawFrameAndTicks(cairo_t* cr, const Layout& L) {
  const style::Sizes& S = L.sizes;
  const Box p = plotBox(L);
  const double fw = S.frameWidth();
  setColour(cr, style::kAxis);
  cairo_set_line_width(cr, fw);
  cairo_set_line_cap(cr, CAIRO_LINE_CAP_BUTT);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_MITER);
  // Just outside the plot area, which stays entirely for the data.
  cairo_rectangle(cr, p.x - fw / 2, p.y - fw / 2, p.w + fw, p.h + fw);
  cairo_stroke(cr);

  const double tickRight = p.x - fw;
  const double tickTop = p.bottom() + fw;
  for (double v : L.yTicks.values) {
    const double y = crisp(L.area.pixelY(v), fw);
    cairo_move_to(cr, tickRight - S.tickLength(), y);
    cairo_line_to(cr, tickRight, y);
  }
  for (double v : L.xTicks.values) {
    const double x = crisp(L.area.pixelX(v), fw);
    cairo_move_to(cr, x, tickTop);
    cairo_line_to(cr, x, tickTop + S.tickLength());
  }
  cairo_stroke(cr);

  setColour(cr, style::kText);
  useFont(cr, S.font());
  for (double v : L.yTicks.values) {
    const std::string label = formatTick(v, L.yTicks);
    cairo_move_to(cr, tickRight - S.tickLength() - S.gap() - textWidth(cr, label),
                  L.area.pixelY(v) + L.text.cap / 2);
    cairo_show_text(cr, label.c_str());
  }
  for (double v : L.xTicks.values) {
    const std::string label = formatTick(v, L.xTicks);
    cairo_move_to(cr, L.area.pixelX(v) - textWidth(cr, label) / 2,
                  tickTop + S.tickLength() + S.gap() + L.text.ascent);
    cairo_show_text(cr, label.c_str());
  }
}

void drawSeries(cairo_t* cr, const Layout& L, const Series& s, style::Rgb colour) {
  const Box p = plotBox(L);
  std::vector<Point> points;
  points.reserve(s.x.size());
  for (size_t k = 0; k < s.x.size(); ++k) points.push_back(toPixel(L, s.x[k], s.y[k]));

  cairo_save(cr);
  setColour(cr, colour);
  clipTo(cr, p);
  // Segments are cut to a slightly larger box first, so Cairo only ever sees modest coordinates;
  // its clip then gives the exact edge.
  const Box cut{p.x - 16, p.y - 16, p.w + 32, p.h + 32};
  Point end;
  bool open = false;
  for (size_t i = 1; i < points.size(); ++i) {
    Point a = points[i - 1];
    Point b = points[i];
    if (!clipSegment(a, b, cut)) {
      open = false;
      continue;
    }
    // The segment continues the previous one unless either was cut between them.
    if (!open || !(a == end)) cairo_move_to(cr, a.x, a.y);
    cairo_line_to(cr, b.x, b.y);
    end = b;
    open = true;
  }
  strokeStyle(cr, L.sizes, s.dashed);
  cairo_stroke(cr);
  cairo_restore(cr);

  // Markers for the points inside the axis ranges (with half a pixel of slack, so that points
  // exactly on a fixed yMin or yMax keep theirs), drawn whole even where they overlap the frame.
  const double r = L.sizes.markerRadius();
  for (const Point& q : points) {
    if (q.x < p.x - 0.5 || q.x > p.right() + 0.5 || q.y < p.y - 0.5 || q.y > p.bottom() + 0.5) continue;
    cairo_new_sub_path(cr);
    cairo_arc(cr, q.x, q.y, r, 0.0, 2 * std::numbers::pi);
  }
  setColour(cr, colour);
  cairo_fill(cr);
}

void drawTitles(cairo_t* cr, const Layout& L) {
  const style::Sizes& S = L.sizes;
  const double lo = S.pad();
  const double hi = L.width - S.pad();
  const double plotCentre = L.area.left + L.area.width / 2;
  setColour(cr, style::kText);

  const auto centred = [&](const std::string& text, double baseline) {
    const double x = centredStart(plotCentre, textWidth(cr, text), lo, hi);
    cairo_save(cr);
    clipTo(cr, {lo, 0.0, hi - lo, static_cast<double>(L.height)});
    cairo_move_to(cr, x, baseline);
    cairo_show_text(cr, text.c_str());
    cairo_restore(cr);
  };
  if (!L.titleText.empty()) {
    useFont(cr, S.titleFont(), true);
    centred(L.titleText, L.titleBaseline);
  }
  useFont(cr, S.font());
  if (!L.xLabelText.empty()) centred(L.xLabelText, L.xLabelBaseline);
  if (!L.yLabelText.empty()) {
    // Rotated to read upwards, centred on the plot's height and clipped to it; text too long for
    // it starts at the bottom, so that its beginning shows.
    const double top = L.area.top;
    const double bottom = L.area.top + L.area.height;
    const double length = textWidth(cr, L.yLabelText);
    const double start = length >= bottom - top ? bottom : centredStart((top + bottom) / 2, length, top, bottom) + length;
    cairo_save(cr);
    clipTo(cr, {L.yLabelBaseline - L.text.ascent, top, L.text.height(), bottom - top});
    cairo_translate(cr, L.yLabelBaseline, start);
    cairo_rotate(cr, -std::numbers::pi / 2);
    cairo_move_to(cr, 0.0, 0.0);
    cairo_show_text(cr, L.yLabelText.c_str());
    cairo_restore(cr);
  }
}

// One row per series: a sample of its stroke with a marker, then its label. Rows that do not fit
// are summarised as "+N more" on the last row that does.
void drawLegend(cairo_t* cr, const Layout& L, const std::vector<Series>& series) {
  const style::Sizes& S = L.sizes;
  const Box& box = L.legend;
  const double inset = S.legendInset();
  const int rowsThatFit = box.empty() ? 0 : static_cast<int>((box.h - 2 * inset) / L.legendRow);
  if (rowsThatFit <= 0) return;

  setColour(cr, style::kBackground);
  cairo_rectangle(cr, box.x, box.y, box.w, box.h);
  cairo_fill(cr);
  const double border = S.gridWidth();
  setColour(cr, style::kLegendBorder);
  cairo_set_line_width(cr, border);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_MITER);
  cairo_set_dash(cr, nullptr, 0, 0.0);
  cairo_rectangle(cr, box.x + border / 2, box.y + border / 2, box.w - border, box.h - border);
  cairo_stroke(cr);

  const bool overflow = series.size() > static_cast<size_t>(rowsThatFit);
  const size_t shown = overflow ? static_cast<size_t>(rowsThatFit - 1) : series.size();
  const Box inside{box.x + inset, box.y + inset, box.w - 2 * inset, box.h - 2 * inset};
  const double labelX = inside.x + S.legendSwatch() + S.legendSpacing();
  cairo_save(cr);
  clipTo(cr, inside);
  useFont(cr, S.font());
  for (size_t i = 0; i < shown; ++i) {
    const double centreY = crisp(inside.y + static_cast<double>(i) * L.legendRow + L.legendRow / 2, S.lineWidth());
    const style::Rgb colour = style::seriesColour(i);
    setColour(cr, colour);
    strokeStyle(cr, S, series[i].dashed);
    cairo_move_to(cr, inside.x, centreY);
    cairo_line_to(cr, inside.x + S.legendSwatch(), centreY);
    cairo_stroke(cr);
    cairo_arc(cr, inside.x + S.legendSwatch() / 2, centreY, S.markerRadius(), 0.0, 2 * std::numbers::pi);
    cairo_fill(cr);
    setColour(cr, style::kText);
    cairo_move_to(cr, labelX, centreY + L.text.cap / 2);
    cairo_show_text(cr, L.seriesLabels[i].c_str());
  }
  if (overflow) {
    const double centreY = inside.y + static_cast<double>(shown) * L.legendRow + L.legendRow / 2;
    std::string more = "+";  // appended, not "+" + string: GCC 12 raises a false -Wrestrict on that
    more += std::to_string(series.size() - shown) + " more";
    setColour(cr, style::kText);
    cairo_move_to(cr, inside.x, centreY + L.text.cap / 2);
    cairo_show_text(cr, more.c_str());
  }
  cairo_restore(cr);
}

}  // namespace

void drawChart(cairo_t* cr, const Layout& layout, const std::vector<Series>& series) {
  setColour(cr, style::kBackground);
  cairo_paint(cr);
  drawGrid(cr, layout);
  drawFrameAndTicks(cr, layout);  // before the data, so markers on the plot's edge stay on top
  for (size_t i = 0; i < series.size(); ++i) drawSeries(cr, layout, series[i], style::seriesColour(i));
  drawTitles(cr, layout);
  drawLegend(cr, layout, series);
  check(cairo_status(cr), "drawing the chart");
}

}  // namespace tessera::plot
