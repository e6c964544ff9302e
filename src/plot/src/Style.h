#pragma once
// Colours and size rules shared by layout and drawing, so the chart's look is decided in one place.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace tessera::plot::style {

struct Rgb {
  uint8_t r = 0;
  uint8_t g = 0;
  uint8_t b = 0;
};

inline constexpr Rgb kBackground{255, 255, 255};
inline constexpr Rgb kText{25, 25, 25};
inline constexpr Rgb kAxis{40, 40, 40};
inline constexpr Rgb kGrid{228, 228, 228};
inline constexpr Rgb kLegendBorder{170, 170, 170};

// Ten clearly distinct hues (the "tab10" set familiar from matplotlib); series beyond ten reuse them,
// which is why dashed lines exist as a second distinguishing channel.
inline constexpr std::array<Rgb, 10> kPalette{{
    {31, 119, 180},
    {255, 127, 14},
    {44, 160, 44},
    {214, 39, 40},
    {148, 103, 189},
    {140, 86, 75},
    {227, 119, 194},
    {127, 127, 127},
    {188, 189, 34},
    {23, 190, 207},
}};

inline Rgb seriesColour(size_t index) { return kPalette[index % kPalette.size()]; }

// Every length scales with the image's shorter side; the default 900x540 chart has unit 1 (13 px
// text, 2 px lines). Tiny images keep text at a legible minimum rather than shrinking with them.
struct Sizes {
  explicit Sizes(int width, int height) : unit(std::max(0.6, std::min(width, height) / 540.0)) {}

  double unit;
  double font() const { return 13.0 * unit; }
  double titleFont() const { return 16.0 * unit; }
  double pad() const { return std::round(8.0 * unit); }        // outer margin, space between blocks
  double gap() const { return std::round(4.0 * unit); }        // between a tick and its label
  double tickLength() const { return std::round(5.0 * unit); }
  double frameWidth() const { return std::max(1.0, std::round(unit)); }  // whole pixels: crisp
  double gridWidth() const { return std::max(1.0, std::round(unit)); }
  double lineWidth() const { return 2.0 * unit; }
  double markerRadius() const { return 3.5 * unit; }
  double dashOn() const { return 8.0 * unit; }
  double dashOff() const { return 5.0 * unit; }
  // Legend rows: sample stroke, then the label.
  double legendInset() const { return std::round(6.0 * unit); }
  // Three dashes and two gaps: a dashed sample is symmetric about the marker in its middle.
  double legendSwatch() const { return 3 * dashOn() + 2 * dashOff(); }
  double legendSpacing() const { return std::round(6.0 * unit); }
};

}  // namespace tessera::plot::style
