#pragma once
// Colours and size rules shared by the drawing files, so the chart's look is decided in one place.

#include <algorithm>
#include <array>
#include <cstddef>

#include "Canvas.h"

namespace tessera::plot::style {

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

// Text scale grows with the image so that large exports stay readable; strokes grow at half
// that rate, so that the default 900x540 chart has the 2-pixel lines it was designed around.
inline int textScale(int width, int height) { return std::clamp(std::min(width, height) / 270, 1, 10); }
inline int strokeScale(int textScale) { return std::max(1, textScale / 2); }
inline double lineHalfWidth(int textScale) { return 1.0 * strokeScale(textScale); }
inline double markerRadius(int textScale) { return 3.0 * strokeScale(textScale); }
inline double dashLength(int textScale) { return 9.0 * strokeScale(textScale); }
inline double dashGap(int textScale) { return 6.0 * strokeScale(textScale); }

}  // namespace tessera::plot::style
