#pragma once
// A 5x8 bitmap font (5x7 plus a descender row) for printable ASCII, drawn at integer scales. Built in so that the plot library
// needs no font files or FreeType; anything outside ASCII 32..126 is drawn as '?'.

#include <string_view>

#include "Canvas.h"

namespace tessera::plot::font {

inline constexpr int kGlyphWidth = 5;
inline constexpr int kGlyphHeight = 8;
inline constexpr int kAdvance = kGlyphWidth + 1;  // one column of spacing between glyphs

// Pixel width of `text` at `scale`, without the spacing after the last glyph.
int textWidth(std::string_view text, int scale);
inline int textHeight(int scale) { return kGlyphHeight * scale; }
// Height of capitals and digits (no descender): what to centre on a tick or a legend sample.
inline int capHeight(int scale) { return (kGlyphHeight - 1) * scale; }

// Horizontal text with its top-left corner at (x, y); pixels outside `clip` are not drawn, so a
// label too long for its box is cut off rather than spilling over neighbouring elements.
void drawText(Canvas& canvas, int x, int y, std::string_view text, int scale, Rgb colour, const Rect& clip);

// Text rotated a quarter turn counter-clockwise (reads bottom to top, as a y-axis label);
// (x, y) is the bottom-left corner of the rotated block, which is textHeight wide.
void drawTextUp(Canvas& canvas, int x, int y, std::string_view text, int scale, Rgb colour, const Rect& clip);

}  // namespace tessera::plot::font
