#include "Legend.h"

#include <algorithm>
#include <string>

#include "BitmapFont.h"
#include "Style.h"

namespace tessera::plot {

namespace {

struct Metrics {
  int inset;   // border plus inner padding
  int swatch;  // length of the sample stroke
  int spacing; // between sample and label
  int row;
};

Metrics metricsFor(int scale) { return {3 * scale + 1, 12 * scale, 3 * scale, font::textHeight(scale) + 3 * scale}; }

}  // namespace

bool wantsLegend(const std::vector<Series>& series) {
  return std::any_of(series.begin(), series.end(), [](const Series& s) { return !s.label.empty(); });
}

int legendWidth(const std::vector<Series>& series, int scale, int maxWidth) {
  const Metrics m = metricsFor(scale);
  int widest = 0;
  for (const Series& s : series) widest = std::max(widest, font::textWidth(s.label, scale));
  const int fixed = 2 * m.inset + m.swatch + m.spacing;
  return fixed + std::clamp(maxWidth - fixed, 0, widest);
}

int legendHeight(const std::vector<Series>& series, int scale) {
  const Metrics m = metricsFor(scale);
  return 2 * m.inset + static_cast<int>(std::min<size_t>(series.size(), 10000)) * m.row;
}

void drawLegend(Canvas& canvas, CoverageMask& mask, const std::vector<Series>& series, const Rect& box, int scale) {
  const Metrics m = metricsFor(scale);
  const int rowsThatFit = (box.h - 2 * m.inset) / m.row;
  if (box.empty() || rowsThatFit <= 0) return;
  canvas.fillRect(box, style::kBackground);
  canvas.strokeRect(box, style::kLegendBorder);

  const bool overflow = series.size() > static_cast<size_t>(rowsThatFit);
  const size_t shown = overflow ? static_cast<size_t>(rowsThatFit - 1) : series.size();
  const Rect inside{box.x + m.inset, box.y + m.inset, box.w - 2 * m.inset, box.h - 2 * m.inset};
  const int labelX = inside.x + m.swatch + m.spacing;
  const int textDrop = m.row / 2 - font::capHeight(scale) / 2;

  for (size_t i = 0; i < shown; ++i) {
    const int rowTop = inside.y + static_cast<int>(i) * m.row;
    // A whole-pixel centre line gives a crisp two-pixel sample stroke.
    const double centreY = rowTop + m.row / 2;
    std::optional<DashPattern> dash;
    if (series[i].dashed) dash = DashPattern{style::dashLength(scale), style::dashGap(scale)};
    mask.addPolyline({{double(inside.x), centreY}, {double(inside.x + m.swatch), centreY}},
                     style::lineHalfWidth(scale), dash, inside);
    mask.addDisc({inside.x + m.swatch / 2.0, centreY}, style::markerRadius(scale), inside);
    mask.paintAndClear(canvas, style::seriesColour(i));
    font::drawText(canvas, labelX, rowTop + textDrop, series[i].label, scale, style::kText, inside);
  }
  if (overflow) {
    const int rowTop = inside.y + static_cast<int>(shown) * m.row;
    std::string more = "+";  // appended, not "+" + string: GCC 12 raises a false -Wrestrict on that
    more += std::to_string(series.size() - shown) + " more";
    font::drawText(canvas, inside.x, rowTop + textDrop, more, scale, style::kText, inside);
  }
}

}  // namespace tessera::plot
