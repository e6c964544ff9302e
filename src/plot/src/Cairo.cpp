#include "Cairo.h"

namespace tessera::plot {

namespace {

// Fontconfig substitutes its default sans-serif face if DejaVu Sans is not installed.
constexpr const char* kFontFamily = "DejaVu Sans";

bool allowedCodePoint(char32_t cp) {
  if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) return false;  // C0 and C1 controls, DEL
  if (cp >= 0xd800 && cp <= 0xdfff) return false;           // UTF-16 surrogates
  if (cp == 0xfffe || cp == 0xffff) return false;           // not characters (and not XML)
  return cp <= 0x10ffff;
}

}  // namespace

void check(cairo_status_t status, std::string_view what) {
  if (status != CAIRO_STATUS_SUCCESS) throw PlotError(std::string(what) + ": " + cairo_status_to_string(status));
}

Context makeContext(cairo_surface_t* surface) {
  Context cr(cairo_create(surface));
  check(cairo_status(cr.get()), "creating a Cairo context");
  cairo_font_options_t* options = cairo_font_options_create();
  cairo_font_options_set_antialias(options, CAIRO_ANTIALIAS_GRAY);
  cairo_font_options_set_hint_style(options, CAIRO_HINT_STYLE_NONE);
  cairo_font_options_set_hint_metrics(options, CAIRO_HINT_METRICS_OFF);
  cairo_set_font_options(cr.get(), options);
  cairo_font_options_destroy(options);
  return cr;
}

void useFont(cairo_t* cr, double size, bool bold) {
  cairo_select_font_face(cr, kFontFamily, CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
}

std::string printable(std::string_view text) {
  static constexpr char32_t kShortest[] = {0, 0, 0x80, 0x800, 0x10000};  // overlong encodings are invalid
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    const size_t length = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xe ? 3 : (lead >> 3) == 0x1e ? 4 : 0;
    bool ok = length > 0 && i + length <= text.size();
    char32_t cp = length == 1 ? lead : length == 2 ? lead & 0x1f : length == 3 ? lead & 0x0f : lead & 0x07;
    for (size_t k = 1; ok && k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      ok = (next & 0xc0) == 0x80;
      cp = (cp << 6) | (next & 0x3f);
    }
    if (ok && cp >= kShortest[length] && allowedCodePoint(cp)) {
      out.append(text.substr(i, length));
      i += length;
    } else {
      out += '?';
      ++i;
    }
  }
  return out;
}

double textWidth(cairo_t* cr, const std::string& text) {
  cairo_text_extents_t extents;
  cairo_text_extents(cr, text.c_str(), &extents);
  return extents.x_advance;
}

FontMetrics fontMetrics(cairo_t* cr) {
  cairo_font_extents_t font;
  cairo_font_extents(cr, &font);
  cairo_text_extents_t digits;
  cairo_text_extents(cr, "0123456789", &digits);
  return {font.ascent, font.descent, -digits.y_bearing};
}

TextMeasure::TextMeasure() : surface_(cairo_image_surface_create(CAIRO_FORMAT_A8, 1, 1)) {
  check(cairo_surface_status(surface_.get()), "creating a surface to measure text");
  cr_ = makeContext(surface_.get());
}

double TextMeasure::width(const std::string& text, double size, bool bold) {
  useFont(cr_.get(), size, bold);
  return textWidth(cr_.get(), text);
}

FontMetrics TextMeasure::metrics(double size, bool bold) {
  useFont(cr_.get(), size, bold);
  return fontMetrics(cr_.get());
}

}  // namespace tessera::plot
