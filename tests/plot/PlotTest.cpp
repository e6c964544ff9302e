// Tests read what the library writes with independent readers (libpng for PNG, expat for SVG) and
// check real content: the image size, where the curves land compared with the data mapped through
// the plot area that the library reports, colours, dashes, anti-aliasing, legend and text.

#include <expat.h>
#include <gtest/gtest.h>
#include <png.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "Style.h"
#include "Ticks.h"
#include "tessera/plot/LinePlot.h"

namespace fs = std::filesystem;
using namespace tessera::plot;

namespace {

// ---------------------------------------------------------------------------------------------
// Reading PNG (libpng's simplified API) and looking at pixels.

struct Colour {
  int r = 0, g = 0, b = 0;
  auto operator<=>(const Colour&) const = default;
};

Colour fromStyle(style::Rgb c) { return {c.r, c.g, c.b}; }
Colour seriesColour(size_t i) { return fromStyle(style::seriesColour(i)); }

int distance(const Colour& a, const Colour& b) {
  return std::max({std::abs(a.r - b.r), std::abs(a.g - b.g), std::abs(a.b - b.b)});
}

struct Image {
  int width = 0;
  int height = 0;
  bool rgbWithoutAlpha = false;  // as stored in the file
  std::vector<uint8_t> rgb;

  bool inside(int x, int y) const { return x >= 0 && y >= 0 && x < width && y < height; }
  Colour at(int x, int y) const {
    const uint8_t* p = &rgb[(size_t(y) * width + x) * 3];
    return {p[0], p[1], p[2]};
  }
  // Text, frame and ticks are near-black; no series colour is.
  bool dark(int x, int y) const {
    const Colour c = at(x, y);
    return c.r < 100 && c.g < 100 && c.b < 100;
  }
  // Series colours are saturated; text, grid, frame and background are grey.
  bool saturated(int x, int y) const {
    const Colour c = at(x, y);
    return std::max({c.r, c.g, c.b}) - std::min({c.r, c.g, c.b}) > 50;
  }
  // `c` itself (give or take rounding) within `radius` pixels of (x, y).
  bool hasNear(int x, int y, const Colour& c, int radius = 1, int tolerance = 12) const {
    for (int dy = -radius; dy <= radius; ++dy)
      for (int dx = -radius; dx <= radius; ++dx)
        if (inside(x + dx, y + dy) && distance(at(x + dx, y + dy), c) <= tolerance) return true;
    return false;
  }
};

Image decodePng(const std::string& bytes) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&image, bytes.data(), bytes.size()))
    throw std::runtime_error(std::string("libpng: ") + image.message);
  Image out;
  out.width = int(image.width);
  out.height = int(image.height);
  out.rgbWithoutAlpha = (image.format & PNG_FORMAT_FLAG_COLOR) && !(image.format & PNG_FORMAT_FLAG_ALPHA);
  image.format = PNG_FORMAT_RGB;
  out.rgb.resize(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, out.rgb.data(), 0, nullptr))
    throw std::runtime_error(std::string("libpng: ") + image.message);
  png_image_free(&image);
  return out;
}

Image renderPng(const std::vector<Series>& series, const LinePlotOptions& options) {
  return decodePng(renderLinePlot(series, options, ImageFormat::Png));
}

// Whole pixels of the plot area (the library keeps its edges on pixel boundaries).
struct Rect {
  int left, top, right, bottom;  // half-open
};
Rect pixels(const PlotArea& a) {
  return {int(std::lround(a.left)), int(std::lround(a.top)), int(std::lround(a.left + a.width)),
          int(std::lround(a.top + a.height))};
}

double distanceToSegment(double px, double py, double ax, double ay, double bx, double by) {
  const double dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
  const double t = len2 > 0 ? std::clamp(((px - ax) * dx + (py - ay) * dy) / len2, 0.0, 1.0) : 0.0;
  return std::hypot(px - (ax + t * dx), py - (ay + t * dy));
}

// ---------------------------------------------------------------------------------------------
// Reading SVG with expat: a well-formedness check and the elements with their attributes.

struct Element {
  std::string name;
  std::map<std::string, std::string> attributes;
  std::string text;  // character data directly inside
};

struct SvgDocument {
  std::vector<Element> elements;  // in document order; [0] is the root
};

SvgDocument parseSvg(const std::string& svg) {
  struct State {
    SvgDocument doc;
    std::vector<size_t> open;
  } state;
  XML_Parser parser = XML_ParserCreate(nullptr);
  XML_SetUserData(parser, &state);
  XML_SetElementHandler(
      parser,
      [](void* data, const XML_Char* name, const XML_Char** attributes) {
        auto* s = static_cast<State*>(data);
        Element e;
        e.name = name;
        for (int i = 0; attributes[i]; i += 2) e.attributes[attributes[i]] = attributes[i + 1];
        s->open.push_back(s->doc.elements.size());
        s->doc.elements.push_back(std::move(e));
      },
      [](void* data, const XML_Char*) { static_cast<State*>(data)->open.pop_back(); });
  XML_SetCharacterDataHandler(parser, [](void* data, const XML_Char* text, int length) {
    auto* s = static_cast<State*>(data);
    if (!s->open.empty()) s->doc.elements[s->open.back()].text.append(text, size_t(length));
  });
  const bool ok = XML_Parse(parser, svg.data(), int(svg.size()), 1) == XML_STATUS_OK;
  const std::string error = ok ? "" : std::string(XML_ErrorString(XML_GetErrorCode(parser))) + " at line " +
                                          std::to_string(XML_GetCurrentLineNumber(parser));
  XML_ParserFree(parser);
  if (!ok) throw std::runtime_error("SVG is not well-formed XML: " + error);
  return std::move(state.doc);
}

std::map<std::string, std::string> parseStyle(const std::string& style) {
  std::map<std::string, std::string> out;
  std::stringstream in(style);
  std::string item;
  while (std::getline(in, item, ';')) {
    const size_t colon = item.find(':');
    if (colon == std::string::npos) continue;
    auto trim = [](std::string s) {
      s.erase(0, s.find_first_not_of(' '));
      s.erase(s.find_last_not_of(' ') + 1);
      return s;
    };
    out[trim(item.substr(0, colon))] = trim(item.substr(colon + 1));
  }
  return out;
}

// "rgb(12.5%,50%,100%)", "rgb(31,119,180)" or "#1f77b4".
Colour parseColour(const std::string& text) {
  if (text.size() == 7 && text[0] == '#')
    return {std::stoi(text.substr(1, 2), nullptr, 16), std::stoi(text.substr(3, 2), nullptr, 16),
            std::stoi(text.substr(5, 2), nullptr, 16)};
  const size_t close = text.find(')');
  if (text.rfind("rgb(", 0) != 0 || close == std::string::npos) throw std::runtime_error("colour '" + text + "'");
  std::stringstream in(text.substr(4, close - 4));
  int channels[3];
  for (int& c : channels) {
    std::string part;
    if (!std::getline(in, part, ',')) throw std::runtime_error("colour '" + text + "'");
    const double v = std::stod(part);
    c = int(std::lround(part.find('%') != std::string::npos ? v * 2.55 : v));
  }
  return {channels[0], channels[1], channels[2]};
}

struct SvgPath {
  std::map<std::string, std::string> style;
  std::vector<std::pair<double, double>> points;  // the coordinates of M and L commands
  bool stroked() const { return style.count("stroke") && style.at("stroke") != "none"; }
  bool filled() const { return style.count("fill") && style.at("fill") != "none"; }
  Colour colour() const { return parseColour(style.at(stroked() ? "stroke" : "fill")); }
};

std::vector<SvgPath> paths(const SvgDocument& doc) {
  std::vector<SvgPath> out;
  for (const Element& e : doc.elements) {
    if (e.name != "path" || !e.attributes.count("style")) continue;
    SvgPath p;
    p.style = parseStyle(e.attributes.at("style"));
    std::stringstream d(e.attributes.count("d") ? e.attributes.at("d") : "");
    std::string token;
    char command = 0;
    std::vector<double> numbers;
    while (d >> token) {
      if (std::isalpha(static_cast<unsigned char>(token[0]))) {
        command = token[0];
        continue;
      }
      if (command == 'M' || command == 'L') {
        numbers.push_back(std::stod(token));
        if (numbers.size() == 2) p.points.emplace_back(numbers[0], numbers[1]), numbers.clear();
      }
    }
    out.push_back(std::move(p));
  }
  return out;
}

SvgDocument renderSvg(const std::vector<Series>& series, const LinePlotOptions& options) {
  return parseSvg(renderLinePlot(series, options, ImageFormat::Svg));
}

const Element* firstNamed(const SvgDocument& doc, const std::string& name) {
  for (const Element& e : doc.elements)
    if (e.name == name) return &e;
  return nullptr;
}

size_t countNamed(const SvgDocument& doc, const std::string& name) {
  return size_t(std::count_if(doc.elements.begin(), doc.elements.end(), [&](const Element& e) { return e.name == name; }));
}

// ---------------------------------------------------------------------------------------------
// Inputs

Series flatSeries(const std::string& label, double y, bool dashed = false) {
  Series s;
  s.label = label;
  s.x = {0, 1, 2, 3, 4, 5, 6, 7, 8};
  s.y.assign(s.x.size(), y);
  s.dashed = dashed;
  return s;
}

Series zigzag(const std::string& label) {
  Series s;
  s.label = label;
  s.x = {0, 1, 2, 3, 4, 5, 6, 7, 8};
  s.y = {0.2, 0.8, 0.3, 0.65, 0.1, 0.9, 0.5, 0.55, 0.35};
  return s;
}

LinePlotOptions unitRange() {
  LinePlotOptions o;
  o.title = "Dice per generation";
  o.xLabel = "generation";
  o.yLabel = "Dice";
  o.yMin = 0.0;
  o.yMax = 1.0;
  return o;
}

template <typename F>
void expectPlotError(F&& f, const std::string& mustMention) {
  try {
    f();
    ADD_FAILURE() << "expected PlotError mentioning '" << mustMention << "'";
  } catch (const PlotError& e) {
    EXPECT_NE(std::string(e.what()).find(mustMention), std::string::npos)
        << "message '" << e.what() << "' does not mention '" << mustMention << "'";
  }
}

std::string readAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class PlotFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("tessera-plot-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

  fs::path dir_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// PNG: size, and where the ink is

TEST(LinePlotPng, HasTheRequestedSizeAsAnRgbImage) {
  for (const auto& [w, h] : {std::pair{900, 540}, {300, 200}, {100, 100}, {1600, 400}, {120, 900}}) {
    LinePlotOptions o = unitRange();
    o.width = w;
    o.height = h;
    const Image img = renderPng({flatSeries("a", 0.5)}, o);
    EXPECT_EQ(img.width, w);
    EXPECT_EQ(img.height, h);
    EXPECT_TRUE(img.rgbWithoutAlpha);
    const PlotArea area = linePlotArea({flatSeries("a", 0.5)}, o);
    EXPECT_GE(area.left, 0);
    EXPECT_GE(area.top, 0);
    EXPECT_LE(area.left + area.width, w);
    EXPECT_LE(area.top + area.height, h);
    EXPECT_GT(area.width, w / 3.0) << w << "x" << h;
    // The mapping itself: the ranges' ends on the area's edges, larger y higher up.
    EXPECT_DOUBLE_EQ(area.pixelX(area.xMin), area.left);
    EXPECT_DOUBLE_EQ(area.pixelX(area.xMax), area.left + area.width);
    EXPECT_DOUBLE_EQ(area.pixelY(area.yMax), area.top);
    EXPECT_DOUBLE_EQ(area.pixelY(area.yMin), area.top + area.height);
  }
}

TEST(LinePlotPng, FlatSeriesLandsOnItsRowAndNowhereElse) {
  const style::Sizes sizes(900, 540);
  for (const double level : {0.25, 0.5, 0.9}) {
    SCOPED_TRACE("y = " + std::to_string(level));
    const std::vector<Series> series{flatSeries("site A", level)};
    const PlotArea area = linePlotArea(series, unitRange());
    EXPECT_DOUBLE_EQ(area.yMin, 0.0);
    EXPECT_DOUBLE_EQ(area.yMax, 1.0);
    const Image img = renderPng(series, unitRange());
    const Rect plot = pixels(area);
    const double centre = area.pixelY(level);
    const int row = int(std::floor(centre));  // a 2-pixel line covers this row whole
    const Colour colour = seriesColour(0);

    int onRow = 0;
    const int from = int(area.pixelX(0)), to = int(area.pixelX(8));
    for (int x = from; x <= to; ++x) onRow += distance(img.at(x, row), colour) <= 12;
    EXPECT_GE(onRow, (to - from + 1) * 95 / 100);
    // Anything coloured must belong to the line or its markers.
    const double reach = sizes.markerRadius() + 1.0;
    for (int y = plot.top; y < plot.bottom; ++y)
      for (int x = plot.left; x < plot.right; ++x)
        if (img.saturated(x, y)) {
          EXPECT_LE(std::abs(y + 0.5 - centre), reach) << "coloured pixel at " << x << "," << y;
        }
  }
}

TEST(LinePlotPng, ZigzagLineFollowsTheDataAndNothingElseIsColoured) {
  const std::vector<Series> series{zigzag("z")};
  const PlotArea area = linePlotArea(series, unitRange());
  const Image img = renderPng(series, unitRange());
  const Colour colour = seriesColour(0);
  const Series& s = series[0];

  // Along every segment, the series colour is found at the mapped position.
  int samples = 0, found = 0;
  for (size_t i = 1; i < s.x.size(); ++i) {
    for (double t = 0.05; t < 1.0; t += 0.05) {
      const double x = area.pixelX(s.x[i - 1] + t * (s.x[i] - s.x[i - 1]));
      const double y = area.pixelY(s.y[i - 1] + t * (s.y[i] - s.y[i - 1]));
      ++samples;
      found += img.hasNear(int(std::floor(x)), int(std::floor(y)), colour);
    }
  }
  EXPECT_EQ(found, samples);

  // And no series colour far from the polyline (an upside-down or shifted mapping fails here).
  const style::Sizes sizes(900, 540);
  const double reach = sizes.markerRadius() + 1.5;
  const Rect plot = pixels(area);
  int coloured = 0;
  for (int y = plot.top; y < plot.bottom; ++y) {
    for (int x = plot.left; x < plot.right; ++x) {
      if (!img.saturated(x, y)) continue;
      ++coloured;
      double nearest = 1e9;
      for (size_t i = 1; i < s.x.size(); ++i)
        nearest = std::min(nearest, distanceToSegment(x + 0.5, y + 0.5, area.pixelX(s.x[i - 1]), area.pixelY(s.y[i - 1]),
                                                      area.pixelX(s.x[i]), area.pixelY(s.y[i])));
      EXPECT_LE(nearest, reach) << "coloured pixel at " << x << "," << y;
    }
  }
  EXPECT_GT(coloured, 1000);
}

TEST(LinePlotPng, LinesAreAntiAliased) {
  const Image img = renderPng({zigzag("z")}, unitRange());
  const Rect plot = pixels(linePlotArea({zigzag("z")}, unitRange()));
  // Sloped lines on a white background: partly covered pixels show blends of the series colour
  // and white (red channel between 31 and 255), which a non-anti-aliased renderer never makes.
  const Colour colour = seriesColour(0);
  int blends = 0;
  for (int y = plot.top; y < plot.bottom; ++y)
    for (int x = plot.left; x < plot.right; ++x) {
      const Colour c = img.at(x, y);
      const double alpha = (255.0 - c.r) / (255.0 - colour.r);
      const Colour expected{int(std::lround(255 - alpha * (255 - colour.r))),
                            int(std::lround(255 - alpha * (255 - colour.g))),
                            int(std::lround(255 - alpha * (255 - colour.b)))};
      blends += alpha > 0.15 && alpha < 0.85 && distance(c, expected) <= 6;
    }
  EXPECT_GT(blends, 300);
}

TEST(LinePlotPng, TwoSeriesGetTwoDistinctColoursAtTheirOwnHeights) {
  const std::vector<Series> series{flatSeries("low", 0.2), flatSeries("high", 0.7)};
  const PlotArea area = linePlotArea(series, unitRange());
  const Image img = renderPng(series, unitRange());
  const int x = int(area.pixelX(2.5));  // between markers
  const auto rowsOf = [&](const Colour& c) {
    std::vector<int> rows;
    for (int y = 0; y < img.height; ++y)
      if (distance(img.at(x, y), c) <= 12) rows.push_back(y);
    return rows;
  };
  const std::vector<int> low = rowsOf(seriesColour(0)), high = rowsOf(seriesColour(1));
  ASSERT_FALSE(low.empty());
  ASSERT_FALSE(high.empty());
  for (int y : low) EXPECT_NEAR(y + 0.5, area.pixelY(0.2), 1.0);
  for (int y : high) EXPECT_NEAR(y + 0.5, area.pixelY(0.7), 1.0);
  EXPECT_LT(high.back(), low.front()) << "larger values must be drawn higher up";
  EXPECT_NE(seriesColour(0), seriesColour(1));
}

TEST(LinePlotPng, DashedSeriesHasGapsSolidDoesNot) {
  const auto runsOnCentreRow = [](bool dashed) {
    const std::vector<Series> series{flatSeries("x", 0.5, dashed)};
    const PlotArea area = linePlotArea(series, unitRange());
    const Image img = renderPng(series, unitRange());
    const int row = int(std::floor(area.pixelY(0.5)));
    const Colour colour = seriesColour(0);
    int runs = 0, longestGap = 0, gap = 0;
    bool previous = false;
    for (int x = int(area.pixelX(0)); x <= int(area.pixelX(8)); ++x) {
      const bool ink = distance(img.at(x, row), colour) <= 12;
      runs += ink && !previous;
      previous = ink;
      gap = ink ? 0 : gap + 1;
      longestGap = std::max(longestGap, gap);
      // The gaps are background, not a faint line.
      if (!ink) {
        EXPECT_FALSE(img.saturated(x, row) && distance(img.at(x, row), colour) <= 60) << x;
      }
    }
    return std::pair{runs, longestGap};
  };
  const auto [solidRuns, solidGap] = runsOnCentreRow(false);
  const auto [dashedRuns, dashedGap] = runsOnCentreRow(true);
  EXPECT_EQ(solidRuns, 1);
  EXPECT_EQ(solidGap, 0);
  EXPECT_GE(dashedRuns, 30);  // about 640 pixels of line with a 13-pixel dash period
  EXPECT_GE(dashedGap, 3);
}

TEST(LinePlotPng, LegendShowsSampleColourAndLabelText) {
  const auto legendInk = [](const std::string& label) {
    const std::vector<Series> series{flatSeries(label, 0.5)};
    const PlotArea area = linePlotArea(series, unitRange());
    const Image img = renderPng(series, unitRange());
    int dark = 0, coloured = 0;
    for (int y = 0; y < img.height; ++y)
      for (int x = int(area.left + area.width) + 3; x < img.width; ++x) dark += img.dark(x, y), coloured += img.saturated(x, y);
    return std::pair{dark, coloured};
  };
  const auto [shortDark, shortColoured] = legendInk("A");
  const auto [longDark, longColoured] = legendInk("hospital-WWWW");
  const auto [noneDark, noneColoured] = legendInk("");
  EXPECT_GT(shortDark, 10);
  EXPECT_GT(longDark, shortDark * 5) << "label text is not being drawn";
  EXPECT_GT(shortColoured, 40) << "legend lacks the series sample";
  EXPECT_EQ(noneColoured, 0) << "no labels, so no legend";
}

TEST(LinePlotPng, LegendShowsTenDistinctColours) {
  // Ten series on one row: the last drawn wins in the plot, but the legend shows every colour.
  std::vector<Series> many;
  for (int i = 0; i < 10; ++i) many.push_back(flatSeries(std::string("s") + std::to_string(i), 0.5));
  const PlotArea area = linePlotArea(many, unitRange());
  const Image img = renderPng(many, unitRange());
  int present = 0;
  for (size_t i = 0; i < 10; ++i) {
    int n = 0;
    for (int y = 0; y < img.height; ++y)
      for (int x = int(area.left + area.width) + 3; x < img.width; ++x) n += distance(img.at(x, y), seriesColour(i)) <= 12;
    present += n >= 20;
  }
  EXPECT_EQ(present, 10);
}

TEST(LinePlotPng, TitleAndAxisLabelsAreDrawnOutsideThePlot) {
  LinePlotOptions bare = unitRange();
  bare.title.clear();
  bare.xLabel.clear();
  bare.yLabel.clear();
  const auto inkOutside = [](const LinePlotOptions& o) {
    const PlotArea area = linePlotArea({flatSeries("", 0.5)}, o);
    const Image img = renderPng({flatSeries("", 0.5)}, o);
    const Rect plot = pixels(area);
    int above = 0, below = 0, left = 0;
    for (int y = 0; y < img.height; ++y)
      for (int x = 0; x < img.width; ++x) {
        if (!img.dark(x, y)) continue;
        above += y < plot.top - 10;     // above the frame and the top tick label
        below += y > plot.bottom + 25;  // beyond the x tick labels
        left += x < plot.left - 40;     // left of the y tick labels: the rotated y label
      }
    return std::tuple{above, below, left};
  };
  const auto [aboveBare, belowBare, leftBare] = inkOutside(bare);
  const auto [aboveFull, belowFull, leftFull] = inkOutside(unitRange());
  EXPECT_GT(aboveFull, aboveBare + 50);
  EXPECT_GT(belowFull, belowBare + 20);
  EXPECT_GT(leftFull, leftBare + 10);
}

TEST(LinePlotPng, TextIsAntiAliasedOutlineFont) {
  // A bitmap font has one ink level; outline text rendered with anti-aliasing has many greys.
  LinePlotOptions o = unitRange();
  o.title = "Dice on held-out slices per federation round";
  const PlotArea area = linePlotArea({flatSeries("", 0.5)}, o);
  const Image img = renderPng({flatSeries("", 0.5)}, o);
  std::set<int> greys;
  for (int y = 0; y < int(area.top) - 10; ++y)
    for (int x = 0; x < img.width; ++x) {
      const Colour c = img.at(x, y);
      if (c.r == c.g && c.g == c.b && c.r < 250) greys.insert(c.r);
    }
  EXPECT_GE(greys.size(), 20u);
}

TEST(LinePlotPng, AutoRangeKeepsAllDataInsideThePlot) {
  Series s;
  s.label = "dice";
  s.x = {0, 1, 2, 3, 4, 5};
  s.y = {0.61, 0.72, 0.80, 0.86, 0.90, 0.91};
  const LinePlotOptions o;
  const PlotArea area = linePlotArea({s}, o);
  EXPECT_LT(area.yMin, 0.61);
  EXPECT_GT(area.yMax, 0.91);
  EXPECT_LT(area.xMin, 0);
  EXPECT_GT(area.xMax, 5);
  const Image img = renderPng({s}, o);
  const Rect plot = pixels(area);
  // With a margin, neither extreme touches the frame: the top and bottom rows stay clear.
  for (int x = plot.left; x < plot.right; ++x)
    for (int y : {plot.top, plot.top + 1, plot.bottom - 2, plot.bottom - 1}) EXPECT_FALSE(img.saturated(x, y)) << x << "," << y;
  for (size_t k = 0; k < s.x.size(); ++k)
    EXPECT_TRUE(img.hasNear(int(area.pixelX(s.x[k])), int(area.pixelY(s.y[k])), seriesColour(0))) << k;
}

TEST(LinePlotPng, SinglePointIsDrawnAsAMarker) {
  Series s;
  s.label = "one";
  s.x = {3};
  s.y = {0.5};
  const PlotArea area = linePlotArea({s}, unitRange());
  const Image img = renderPng({s}, unitRange());
  int n = 0;
  for (int y = int(area.pixelY(0.5)) - 6; y <= int(area.pixelY(0.5)) + 6; ++y)
    for (int x = int(area.pixelX(3)) - 6; x <= int(area.pixelX(3)) + 6; ++x) n += distance(img.at(x, y), seriesColour(0)) <= 12;
  EXPECT_GE(n, 15);
}

TEST(LinePlotPng, EmptySeriesNextToOthersOnlyGetsItsLegendRow) {
  Series empty;
  empty.label = "no data yet";
  const std::vector<Series> series{flatSeries("a", 0.5), empty};
  const PlotArea area = linePlotArea(series, unitRange());
  const Image img = renderPng(series, unitRange());
  int inPlot = 0, inLegend = 0;
  const Rect plot = pixels(area);
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) {
      if (distance(img.at(x, y), seriesColour(1)) > 12) continue;
      (x >= plot.left && x < plot.right && y >= plot.top && y < plot.bottom ? inPlot : inLegend)++;
    }
  EXPECT_EQ(inPlot, 0);
  EXPECT_GT(inLegend, 20);
}

TEST(LinePlotPng, OverlongTextOddBytesAndManySeriesAreClippedNotFatal) {
  std::vector<Series> many;
  for (int i = 0; i < 60; ++i) many.push_back(flatSeries(std::string(300, 'W') + std::to_string(i), i / 60.0, i % 2));
  LinePlotOptions o;
  o.title = std::string(5000, 'T');
  o.xLabel = std::string(2000, 'x') + "\xff\xfe";  // not UTF-8
  o.yLabel = std::string(2000, 'y') + "\xc3\xa9\t\x01<&>";  // é, control bytes, XML specials
  for (const auto& [w, h] : {std::pair{100, 100}, {900, 540}, {8000, 120}, {120, 3000}}) {
    o.width = w;
    o.height = h;
    const Image img = renderPng(many, o);
    EXPECT_EQ(img.width, w);
    EXPECT_EQ(img.height, h);
    EXPECT_NO_THROW(renderSvg(many, o)) << w << "x" << h;
  }
}

TEST(LinePlotPng, ExtremeButFiniteValuesDoNotCrash) {
  Series s;
  s.x = {0, 1, 2};
  s.y = {-1e300, 0, 1e300};
  LinePlotOptions o;
  EXPECT_NO_THROW(renderLinePlot({s}, o, ImageFormat::Png));
  s.y = {-1.7e308, 0, 1.7e308};  // the span itself overflows
  expectPlotError([&] { renderLinePlot({s}, o, ImageFormat::Png); }, "too wide");
  s.y = {5, 5, 5};
  o.yMin = 0.0;
  o.yMax = 1.0;  // data entirely above a fixed range: lines are cut at the frame
  const PlotArea area = linePlotArea({s}, o);
  const Image img = renderPng({s}, o);
  const Rect plot = pixels(area);
  for (int y = plot.top; y < plot.bottom; ++y)
    for (int x = plot.left; x < plot.right; ++x) EXPECT_FALSE(img.saturated(x, y)) << x << "," << y;
  s.y = {-1e300, 0.5, 1.7e308};  // far beyond a fixed range: the visible middle still lands right
  const Image steep = renderPng({s}, o);
  EXPECT_TRUE(steep.hasNear(int(area.pixelX(1)), int(area.pixelY(0.5)), seriesColour(0)));
  o.yMax.reset();
  o.yMin = 10.0;  // only yMin, above all data
  EXPECT_NO_THROW(renderLinePlot({s}, o, ImageFormat::Png));
}

// ---------------------------------------------------------------------------------------------
// SVG: the same drawing as vector paths

TEST(LinePlotSvg, IsWellFormedXmlWithTheImageSize) {
  LinePlotOptions o = unitRange();
  o.width = 640;
  o.height = 480;
  const SvgDocument doc = renderSvg({flatSeries("a", 0.5), flatSeries("b", 0.3, true)}, o);
  ASSERT_FALSE(doc.elements.empty());
  const Element& root = doc.elements[0];
  EXPECT_EQ(root.name, "svg");
  EXPECT_EQ(root.attributes.at("xmlns"), "http://www.w3.org/2000/svg");
  EXPECT_EQ(std::stod(root.attributes.at("width")), 640);  // "640px" or "640"
  EXPECT_EQ(std::stod(root.attributes.at("height")), 480);
  EXPECT_EQ(root.attributes.at("viewBox"), "0 0 640 480");
  EXPECT_THROW(parseSvg("<svg><path></svg>"), std::runtime_error) << "the XML check itself must reject bad XML";
}

TEST(LinePlotSvg, OneLineAndOneLegendSamplePerSeriesDashedWhereAsked) {
  const std::vector<Series> series{flatSeries("fedavg mean", 0.7), zigzag("site-1"), flatSeries("local-only mean", 0.4, true)};
  const std::vector<SvgPath> all = paths(renderSvg(series, unitRange()));
  for (size_t i = 0; i < series.size(); ++i) {
    SCOPED_TRACE(series[i].label);
    int strokes = 0, dashed = 0, fills = 0;
    for (const SvgPath& p : all) {
      if (p.stroked() && p.colour() == seriesColour(i)) {
        ++strokes;
        dashed += p.style.count("stroke-dasharray") && p.style.at("stroke-dasharray") != "none";
      }
      if (p.filled() && !p.stroked() && p.colour() == seriesColour(i)) ++fills;
    }
    EXPECT_EQ(strokes, 2) << "the line and its legend sample";
    EXPECT_EQ(dashed, series[i].dashed ? 2 : 0);
    EXPECT_EQ(fills, 2) << "the markers and the legend's marker";
  }
}

TEST(LinePlotSvg, LinePathFollowsTheDataThroughThePlotArea) {
  const std::vector<Series> series{zigzag("z")};
  const PlotArea area = linePlotArea(series, unitRange());
  const std::vector<SvgPath> all = paths(renderSvg(series, unitRange()));
  const SvgPath* line = nullptr;
  size_t longest = 0;
  for (const SvgPath& p : all)
    if (p.stroked() && p.colour() == seriesColour(0) && p.points.size() > longest) line = &p, longest = p.points.size();
  ASSERT_NE(line, nullptr);
  const Series& s = series[0];
  ASSERT_EQ(line->points.size(), s.x.size());
  for (size_t k = 0; k < s.x.size(); ++k) {
    EXPECT_NEAR(line->points[k].first, area.pixelX(s.x[k]), 0.01) << k;
    EXPECT_NEAR(line->points[k].second, area.pixelY(s.y[k]), 0.01) << k;
  }
}

TEST(LinePlotSvg, CarriesTitleAndLegendText) {
  LinePlotOptions o = unitRange();
  o.title = "Dice <per> round & site";
  const SvgDocument shortLabels = renderSvg({flatSeries("A", 0.5), flatSeries("local-only mean", 0.2, true)}, o);
  ASSERT_NE(firstNamed(shortLabels, "title"), nullptr);
  EXPECT_EQ(firstNamed(shortLabels, "title")->text, "Dice <per> round & site");
  ASSERT_NE(firstNamed(shortLabels, "desc"), nullptr);
  const std::string desc = firstNamed(shortLabels, "desc")->text;
  EXPECT_NE(desc.find("A; local-only mean (dashed)"), std::string::npos) << desc;
  EXPECT_NE(desc.find("x: generation"), std::string::npos) << desc;

  // The drawn text is glyph outlines placed by <use>: nine more characters in a legend label
  // place nine more glyphs.
  const SvgDocument longLabels = renderSvg({flatSeries("ABCDEFGHIJ", 0.5), flatSeries("local-only mean", 0.2, true)}, o);
  EXPECT_EQ(countNamed(longLabels, "use"), countNamed(shortLabels, "use") + 9);
}

TEST(LinePlotSvg, PngAndSvgShareTheLayout) {
  // One layout for both: the plot area reported once, the PNG's frame and the SVG's frame agree.
  const std::vector<Series> series{flatSeries("a", 0.5)};
  const PlotArea area = linePlotArea(series, unitRange());
  const Image img = renderPng(series, unitRange());
  const Rect plot = pixels(area);
  const int midX = (plot.left + plot.right) / 2, midY = (plot.top + plot.bottom) / 3;
  EXPECT_TRUE(img.dark(plot.left - 1, midY));
  EXPECT_FALSE(img.dark(plot.left, midY));
  EXPECT_TRUE(img.dark(midX, plot.top - 1));
  EXPECT_FALSE(img.dark(midX, plot.top));
  EXPECT_TRUE(img.dark(plot.right, midY));
  EXPECT_TRUE(img.dark(midX, plot.bottom));

  bool frameFound = false;
  for (const SvgPath& p : paths(renderSvg(series, unitRange()))) {
    if (!p.stroked() || p.points.size() < 4) continue;
    double minX = 1e9, maxX = -1e9, minY = 1e9, maxY = -1e9;
    for (const auto& [x, y] : p.points) minX = std::min(minX, x), maxX = std::max(maxX, x), minY = std::min(minY, y), maxY = std::max(maxY, y);
    if (std::abs(minX - (area.left - 0.5)) < 0.01 && std::abs(maxX - (area.left + area.width + 0.5)) < 0.01 &&
        std::abs(minY - (area.top - 0.5)) < 0.01 && std::abs(maxY - (area.top + area.height + 0.5)) < 0.01)
      frameFound = true;
  }
  EXPECT_TRUE(frameFound) << "no frame rectangle just outside the reported plot area in the SVG";
}

// ---------------------------------------------------------------------------------------------
// Input validation

TEST(LinePlotErrors, RejectsBadInputNamingTheProblem) {
  LinePlotOptions o;
  const auto render = [&](const std::vector<Series>& s, const LinePlotOptions& opts) {
    renderLinePlot(s, opts, ImageFormat::Png);
  };
  expectPlotError([&] { render({}, o); }, "no series");
  expectPlotError([&] { linePlotArea({}, o); }, "no series");

  Series mismatch = flatSeries("site B", 0.5);
  mismatch.y.pop_back();
  expectPlotError([&] { render({flatSeries("a", 1), mismatch}, o); }, "site B");
  expectPlotError([&] { render({mismatch}, o); }, "9 x values but 8 y values");

  Series nan = flatSeries("n", 0.5);
  nan.y[3] = std::numeric_limits<double>::quiet_NaN();
  expectPlotError([&] { render({nan}, o); }, "point 3");
  expectPlotError([&] { renderLinePlot({nan}, o, ImageFormat::Svg); }, "not finite");
  Series inf = flatSeries("i", 0.5);
  inf.x[2] = std::numeric_limits<double>::infinity();
  expectPlotError([&] { render({inf}, o); }, "not finite");

  Series empty;
  expectPlotError([&] { render({empty}, o); }, "no points");
  expectPlotError([&] { render({empty, empty}, o); }, "no points");

  const Series ok = flatSeries("ok", 0.5);
  for (const auto& [w, h, bad] : {std::tuple{99, 540, "99"}, {900, 8001, "8001"}, {0, 540, "width 0"}, {900, -5, "-5"}}) {
    LinePlotOptions sized;
    sized.width = w;
    sized.height = h;
    expectPlotError([&] { render({ok}, sized); }, bad);
  }
  LinePlotOptions inverted;
  inverted.yMin = 1.0;
  inverted.yMax = 1.0;
  expectPlotError([&] { render({ok}, inverted); }, "yMin");
  LinePlotOptions nanLimit;
  nanLimit.yMax = std::nan("");
  expectPlotError([&] { render({ok}, nanLimit); }, "yMax");

  LinePlotOptions edge;
  edge.width = 100;
  edge.height = 8000;
  EXPECT_NO_THROW(render({ok}, edge));
}

// ---------------------------------------------------------------------------------------------
// Writing files

TEST_F(PlotFileTest, ExtensionChoosesTheFormat) {
  const std::vector<Series> series{flatSeries("site A", 0.4), flatSeries("site B", 0.8, true)};
  writeLinePlot(series, unitRange(), dir_ / "dice.png");
  writeLinePlot(series, unitRange(), dir_ / "dice.svg");
  writeLinePlot(series, unitRange(), dir_ / "DICE.SVG");
  const Image png = decodePng(readAll(dir_ / "dice.png"));
  EXPECT_EQ(png.width, 900);
  EXPECT_EQ(png.height, 540);
  EXPECT_EQ(readAll(dir_ / "dice.png"), renderLinePlot(series, unitRange(), ImageFormat::Png));
  EXPECT_EQ(parseSvg(readAll(dir_ / "dice.svg")).elements.at(0).name, "svg");
  // The same document, but for the surface id that Cairo numbers per process.
  const auto withoutSurfaceId = [](const std::string& svg) {
    std::string out = svg;
    const size_t at = out.find("id=\"surface");
    if (at != std::string::npos) out.erase(at, out.find('"', at + 4) - at);
    return out;
  };
  EXPECT_TRUE(withoutSurfaceId(readAll(dir_ / "DICE.SVG")) == withoutSurfaceId(readAll(dir_ / "dice.svg")));
  EXPECT_EQ(entries(), (std::vector<std::string>{"DICE.SVG", "dice.png", "dice.svg"})) << "temporary file left behind";
  EXPECT_EQ(imageFormatFor("a/b.Png"), ImageFormat::Png);
  EXPECT_EQ(imageFormatFor("a/b.svg"), ImageFormat::Svg);
}

TEST_F(PlotFileTest, UnknownExtensionIsAnErrorNamingTheFile) {
  for (const std::string name : {"dice.jpg", "dice", "dice.png.tmp", "dice.svgz"}) {
    const fs::path path = dir_ / name;
    expectPlotError([&] { writeLinePlot({flatSeries("a", 0.5)}, unitRange(), path); }, path.string());
    expectPlotError([&] { imageFormatFor(path); }, ".png or .svg");
  }
  EXPECT_TRUE(entries().empty());
}

TEST_F(PlotFileTest, WriteLinePlotPngWritesPngWhateverTheName) {
  writeLinePlotPng({flatSeries("a", 0.5)}, unitRange(), dir_ / "chart.bin");
  EXPECT_EQ(decodePng(readAll(dir_ / "chart.bin")).width, 900);
}

TEST_F(PlotFileTest, ReplacesAnExistingFile) {
  const fs::path path = dir_ / "dice.svg";
  std::ofstream(path) << "old content";
  writeLinePlot({flatSeries("a", 0.5)}, unitRange(), path);
  EXPECT_NO_THROW(parseSvg(readAll(path)));
  EXPECT_EQ(entries(), std::vector<std::string>{"dice.svg"});
}

TEST_F(PlotFileTest, MissingDirectoryThrowsNamingThePath) {
  for (const std::string name : {"dice.png", "dice.svg"}) {
    const fs::path path = dir_ / "no-such-dir" / name;
    expectPlotError([&] { writeLinePlot({flatSeries("a", 0.5)}, unitRange(), path); }, path.string());
    EXPECT_FALSE(fs::exists(path.parent_path()));
  }
}

TEST_F(PlotFileTest, FailedRenameLeavesNoTemporaryFile) {
  const fs::path path = dir_ / "taken.png";
  fs::create_directories(path / "child");  // a non-empty directory cannot be replaced by a file
  expectPlotError([&] { writeLinePlot({flatSeries("a", 0.5)}, unitRange(), path); }, path.string());
  EXPECT_EQ(entries(), std::vector<std::string>{"taken.png"});
}

TEST_F(PlotFileTest, InvalidInputIsReportedWithThePathAndWritesNothing) {
  const fs::path path = dir_ / "dice.svg";
  expectPlotError([&] { writeLinePlot({}, unitRange(), path); }, path.string() + ": line plot: no series");
  Series nan = flatSeries("n", 0.5);
  nan.x[0] = std::nan("");
  expectPlotError([&] { writeLinePlot({nan}, unitRange(), path); }, "not finite");
  EXPECT_TRUE(entries().empty());
}

// ---------------------------------------------------------------------------------------------
// Ticks (white-box: private header)

TEST(Ticks, RoundStepsWithinTheRange) {
  const Ticks t = niceTicks(0.47, 0.93, 6, false);
  ASSERT_FALSE(t.values.empty());
  for (double v : t.values) {
    EXPECT_GE(v, 0.47);
    EXPECT_LE(v, 0.93);
  }
  EXPECT_NEAR(t.values[1] - t.values[0], 0.1, 1e-12);
  EXPECT_EQ(formatTick(t.values[0], t), "0.5");
  EXPECT_EQ(formatTick(t.values.back(), t), "0.9");

  const Ticks fine = niceTicks(0.0, 1.0, 4, false);
  EXPECT_EQ(formatTick(fine.values[1], fine), "0.25");
}

TEST(Ticks, IntegerAxesNeverGetFractionalSteps) {
  for (const auto& [lo, hi, count] : {std::tuple{-0.3, 10.3, 5}, {-0.1, 2.1, 10}, {0.0, 1000.0, 7}, {-0.03, 0.4, 8}}) {
    const Ticks t = niceTicks(lo, hi, count, true);
    for (double v : t.values) EXPECT_EQ(v, std::round(v)) << lo << ".." << hi;
    for (double v : t.values) EXPECT_EQ(formatTick(v, t).find('.'), std::string::npos);
  }
  EXPECT_EQ(niceTicks(-0.1, 2.1, 10, true).values, (std::vector<double>{0, 1, 2}));
}

TEST(Ticks, NoNegativeZeroAndSurvivesDegenerateRanges) {
  const Ticks t = niceTicks(-1.0, 1.0, 4, false);
  for (double v : t.values) EXPECT_NE(formatTick(v, t), "-0.0");
  EXPECT_TRUE(niceTicks(1.0, 1.0, 4, false).values.empty());
  EXPECT_LE(niceTicks(1e15, 1e15 + 1.0, 5, false).values.size(), 1001u);
  EXPECT_LE(niceTicks(0.0, 1e-300, 5, false).values.size(), 1001u);
}
