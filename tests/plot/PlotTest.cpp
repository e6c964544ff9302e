// Tests decode what the library writes with an independent reader (zlib + the PNG spec, written
// here), then look at real pixels: where the curves land, their colours, dashes and the legend.

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "Ticks.h"
#include "tessera/plot/LinePlot.h"

namespace fs = std::filesystem;
using namespace tessera::plot;

namespace {

// ---------------------------------------------------------------------------------------------
// A small PNG reader, deliberately separate from the encoder: it checks everything it relies on.

struct DecodedPng {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;
  std::vector<int> filterTypes;  // one per row
  int idatChunks = 0;
};

uint32_t readBigEndian(const std::string& bytes, size_t at) {
  if (at + 4 > bytes.size()) throw std::runtime_error("truncated at byte " + std::to_string(at));
  return (uint32_t(uint8_t(bytes[at])) << 24) | (uint32_t(uint8_t(bytes[at + 1])) << 16) |
         (uint32_t(uint8_t(bytes[at + 2])) << 8) | uint32_t(uint8_t(bytes[at + 3]));
}

int paeth(int a, int b, int c) {
  const int p = a + b - c;
  const int pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}

DecodedPng decodePng(const std::string& bytes) {
  if (bytes.compare(0, 8, std::string("\x89PNG\r\n\x1a\n", 8)) != 0) throw std::runtime_error("bad signature");
  DecodedPng png;
  std::string idat;
  bool sawHeader = false, sawEnd = false;
  size_t pos = 8;
  while (pos < bytes.size()) {
    if (sawEnd) throw std::runtime_error("data after IEND");
    const uint32_t length = readBigEndian(bytes, pos);
    if (pos + 12 + length > bytes.size()) throw std::runtime_error("chunk runs past the end");
    const std::string type = bytes.substr(pos + 4, 4);
    const std::string data = bytes.substr(pos + 8, length);
    const uint32_t storedCrc = readBigEndian(bytes, pos + 8 + length);
    const auto* covered = reinterpret_cast<const Bytef*>(bytes.data() + pos + 4);
    const uint32_t actualCrc = uint32_t(crc32(crc32(0L, Z_NULL, 0), covered, uInt(4 + length)));
    if (storedCrc != actualCrc) throw std::runtime_error("CRC mismatch in chunk " + type);
    if (type == "IHDR") {
      if (length != 13) throw std::runtime_error("IHDR length " + std::to_string(length));
      png.width = int(readBigEndian(data, 0));
      png.height = int(readBigEndian(data, 4));
      if (data[8] != 8 || data[9] != 2 || data[10] != 0 || data[11] != 0 || data[12] != 0)
        throw std::runtime_error("not 8-bit RGB, deflate, standard filters, no interlace");
      sawHeader = true;
    } else if (type == "IDAT") {
      if (!sawHeader) throw std::runtime_error("IDAT before IHDR");
      idat += data;
      ++png.idatChunks;
    } else if (type == "IEND") {
      sawEnd = true;
    } else if (!(type[0] & 0x20)) {
      throw std::runtime_error("unknown critical chunk " + type);
    }
    pos += 12 + length;
  }
  if (!sawHeader || !sawEnd || png.idatChunks == 0) throw std::runtime_error("missing IHDR, IDAT or IEND");

  const size_t stride = size_t(png.width) * 3;
  const size_t expected = size_t(png.height) * (1 + stride);
  std::vector<uint8_t> raw(expected + 1);  // one spare byte reveals data beyond the expected size
  uLongf rawSize = raw.size();
  const int rc = uncompress(raw.data(), &rawSize, reinterpret_cast<const Bytef*>(idat.data()), idat.size());
  if (rc != Z_OK) throw std::runtime_error("inflate failed: " + std::to_string(rc));
  if (rawSize != expected)
    throw std::runtime_error("inflated " + std::to_string(rawSize) + " bytes, expected " + std::to_string(expected));

  png.rgb.resize(size_t(png.height) * stride);
  for (int y = 0; y < png.height; ++y) {
    const int filter = raw[size_t(y) * (1 + stride)];
    if (filter > 4) throw std::runtime_error("row " + std::to_string(y) + " has filter " + std::to_string(filter));
    png.filterTypes.push_back(filter);
    const uint8_t* in = &raw[size_t(y) * (1 + stride) + 1];
    uint8_t* out = &png.rgb[size_t(y) * stride];
    const uint8_t* up = y > 0 ? out - stride : nullptr;
    for (size_t i = 0; i < stride; ++i) {
      const int a = i >= 3 ? out[i - 3] : 0, b = up ? up[i] : 0, c = (up && i >= 3) ? up[i - 3] : 0;
      const int predictor = filter == 0 ? 0 : filter == 1 ? a : filter == 2 ? b : filter == 3 ? (a + b) / 2 : paeth(a, b, c);
      out[i] = uint8_t(in[i] + predictor);
    }
  }
  return png;
}

std::string readAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// ---------------------------------------------------------------------------------------------
// Looking at pixels.

struct Colour {
  int r, g, b;
  bool operator==(const Colour&) const = default;
  auto operator<=>(const Colour&) const = default;
};

struct Image {
  int width;
  int height;
  std::vector<uint8_t> rgb;

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
};

Image toImage(const Raster& r) { return {r.width, r.height, r.rgb}; }

// The frame around the plot area, found as the long straight dark runs (text never makes long runs).
struct Frame {
  int left = -1, right = -1, top = -1, bottom = -1;
  double centreRowFor(double fraction) const {  // continuous pixel row of a y value at `fraction` of the span
    const double plotTop = top + 1, plotHeight = bottom - top - 1;
    return plotTop + (1.0 - fraction) * plotHeight;
  }
};

Frame findFrame(const Image& img) {
  Frame f;
  for (int x = 0; x < img.width; ++x) {
    int run = 0, best = 0;
    for (int y = 0; y < img.height; ++y) best = std::max(best, run = img.dark(x, y) ? run + 1 : 0);
    if (best >= img.height / 3) {
      if (f.left < 0) f.left = x;
      f.right = x;
    }
  }
  for (int y = 0; y < img.height; ++y) {
    int run = 0, best = 0;
    for (int x = 0; x < img.width; ++x) best = std::max(best, run = img.dark(x, y) ? run + 1 : 0);
    if (best >= img.width / 4) {
      if (f.top < 0) f.top = y;
      f.bottom = y;
    }
  }
  return f;
}

// Saturated colours inside the frame with how often they occur, most frequent first.
std::vector<std::pair<Colour, int>> seriesColours(const Image& img, const Frame& f) {
  std::map<Colour, int> counts;
  for (int y = f.top + 1; y < f.bottom; ++y)
    for (int x = f.left + 1; x < f.right; ++x)
      if (img.saturated(x, y)) ++counts[img.at(x, y)];
  std::vector<std::pair<Colour, int>> sorted(counts.begin(), counts.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  return sorted;
}

Series flatSeries(const std::string& label, double y, bool dashed = false) {
  Series s;
  s.label = label;
  s.x = {0, 1, 2, 3, 4, 5, 6, 7, 8};
  s.y.assign(s.x.size(), y);
  s.dashed = dashed;
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
// PNG encoding

TEST(PngEncoder, RoundTripsAnExactRaster) {
  Raster r;
  r.width = 7;
  r.height = 5;
  for (int i = 0; i < r.width * r.height * 3; ++i) r.rgb.push_back(uint8_t(i * 37 + (i / 7) * 11));
  const DecodedPng png = decodePng(encodePng(r));
  EXPECT_EQ(png.width, 7);
  EXPECT_EQ(png.height, 5);
  EXPECT_EQ(png.idatChunks, 1);
  EXPECT_EQ(png.filterTypes.size(), 5u);
  EXPECT_EQ(png.rgb, r.rgb);
}

TEST(PngEncoder, TheReaderNoticesCorruption) {
  // Guards the checks above: a reader that accepted anything would make every other test vacuous.
  Raster r{10, 10, std::vector<uint8_t>(300, 128)};
  const std::string good = encodePng(r);
  ASSERT_NO_THROW(decodePng(good));
  std::string badCrc = good;
  badCrc[good.size() - 20] ^= 0x01;  // inside IDAT's payload or CRC
  EXPECT_THROW(decodePng(badCrc), std::runtime_error);
  std::string badSignature = good;
  badSignature[1] = 'Q';
  EXPECT_THROW(decodePng(badSignature), std::runtime_error);
  EXPECT_THROW(decodePng(good.substr(0, good.size() - 5)), std::runtime_error);
}

TEST(PngEncoder, RejectsInconsistentRasters) {
  expectPlotError([] { encodePng(Raster{4, 4, std::vector<uint8_t>(47)}); }, "48");
  expectPlotError([] { encodePng(Raster{0, 4, {}}); }, "0x4");
}

// ---------------------------------------------------------------------------------------------
// Pixel content

TEST(LinePlotPixels, FlatSeriesLandsOnItsRowAndNowhereElse) {
  for (const double level : {0.25, 0.5, 0.9}) {
    SCOPED_TRACE("y = " + std::to_string(level));
    const Image img = toImage(renderLinePlot({flatSeries("site A", level)}, unitRange()));
    const Frame f = findFrame(img);
    ASSERT_GE(f.left, 0);
    ASSERT_GT(f.right - f.left, img.width / 2);
    ASSERT_GT(f.bottom - f.top, img.height / 2);

    const auto colours = seriesColours(img, f);
    ASSERT_FALSE(colours.empty());
    const Colour series = colours.front().first;
    const double centre = f.centreRowFor(level);
    int onCentreRow = 0;
    for (int y = f.top + 1; y < f.bottom; ++y) {
      for (int x = f.left + 1; x < f.right; ++x) {
        if (!img.saturated(x, y)) continue;
        // Anything coloured must belong to the line or its markers (radius 3 at this size).
        EXPECT_LE(std::abs(y + 0.5 - centre), 5.0) << "coloured pixel at " << x << "," << y;
        if (img.at(x, y) == series && std::abs(y + 0.5 - centre) <= 1.0) ++onCentreRow;
      }
    }
    // The line spans x = 0..8 of the -0.24..8.24 range: most of the plot's width.
    EXPECT_GE(onCentreRow, (f.right - f.left) * 8 / 10);
  }
}

TEST(LinePlotPixels, TwoSeriesGetTwoDistinctColoursAtTheirOwnHeights) {
  const Image img = toImage(renderLinePlot({flatSeries("low", 0.2), flatSeries("high", 0.7)}, unitRange()));
  const Frame f = findFrame(img);
  const auto colours = seriesColours(img, f);
  ASSERT_GE(colours.size(), 2u);
  ASSERT_GE(colours[1].second, 200) << "second series barely visible";
  EXPECT_NE(colours[0].first, colours[1].first);

  const auto meanRow = [&](const Colour& c) {
    double sum = 0;
    int n = 0;
    for (int y = f.top + 1; y < f.bottom; ++y)
      for (int x = f.left + 1; x < f.right; ++x)
        if (img.at(x, y) == c) sum += y + 0.5, ++n;
    return sum / n;
  };
  const double rowA = meanRow(colours[0].first), rowB = meanRow(colours[1].first);
  const double rowLow = f.centreRowFor(0.2), rowHigh = f.centreRowFor(0.7);
  // Whichever colour is which, one line sits at 0.2 and the other at 0.7 (asymmetric, so that an
  // upside-down axis fails).
  EXPECT_NEAR(std::min(rowA, rowB), rowHigh, 1.5);
  EXPECT_NEAR(std::max(rowA, rowB), rowLow, 1.5);
}

TEST(LinePlotPixels, LegendShowsAtLeastEightDistinctColours) {
  // Ten series on one row: the last drawn wins, but the legend shows every colour.
  std::vector<Series> many;
  for (int i = 0; i < 10; ++i) many.push_back(flatSeries(std::string("s") + std::to_string(i), 0.5));
  const Image img = toImage(renderLinePlot(many, unitRange()));
  const Frame f = findFrame(img);
  std::map<Colour, int> legendColours;
  for (int y = 0; y < img.height; ++y)
    for (int x = f.right + 1; x < img.width; ++x)
      if (img.saturated(x, y)) ++legendColours[img.at(x, y)];
  int strong = 0;
  for (const auto& [c, n] : legendColours) strong += n >= 20;
  EXPECT_GE(strong, 8) << "palette must offer at least 8 distinct colours";
}

TEST(LinePlotPixels, DashedSeriesHasGapsSolidDoesNot) {
  const auto runsOnCentreRow = [](bool dashed) {
    const Image img = toImage(renderLinePlot({flatSeries("x", 0.5, dashed)}, unitRange()));
    const Frame f = findFrame(img);
    const Colour series = seriesColours(img, f).front().first;
    // The row closest to the line's centre, scanned between its first and last coloured pixel.
    const int row = int(std::floor(f.centreRowFor(0.5)));
    int first = -1, last = -1;
    for (int x = f.left + 1; x < f.right; ++x)
      if (img.at(x, row) == series) last = x, first = first < 0 ? x : first;
    int runs = 0;
    for (int x = first; x <= last; ++x) runs += img.at(x, row) == series && !(img.at(x - 1, row) == series);
    return runs;
  };
  EXPECT_EQ(runsOnCentreRow(false), 1);
  EXPECT_GE(runsOnCentreRow(true), 10);
}

TEST(LinePlotPixels, LegendShowsColourAndLabelText) {
  const auto legendInk = [](const std::string& label) {
    const Image img = toImage(renderLinePlot({flatSeries(label, 0.5)}, unitRange()));
    const Frame f = findFrame(img);
    int dark = 0, coloured = 0;
    for (int y = f.top; y <= f.bottom; ++y)
      for (int x = f.right + 2; x < img.width; ++x) dark += img.dark(x, y), coloured += img.saturated(x, y);
    return std::pair{dark, coloured};
  };
  const auto [shortDark, shortColoured] = legendInk("A");
  const auto [longDark, longColoured] = legendInk("hospital-WWWW");
  const auto [noneDark, noneColoured] = legendInk("");
  EXPECT_GT(shortDark, 10);
  EXPECT_GT(longDark, shortDark * 5) << "label text is not being drawn";
  EXPECT_GT(shortColoured, 20) << "legend lacks the series sample";
  EXPECT_EQ(noneColoured, 0) << "no labels, so no legend";
}

TEST(LinePlotPixels, TitleAndAxisLabelsAreDrawnOutsideThePlot) {
  LinePlotOptions bare = unitRange();
  bare.title.clear();
  bare.xLabel.clear();
  bare.yLabel.clear();
  const auto inkOutsideFrame = [](const LinePlotOptions& o) {
    const Image img = toImage(renderLinePlot({flatSeries("", 0.5)}, o));
    const Frame f = findFrame(img);
    int above = 0, below = 0, left = 0;
    for (int y = 0; y < img.height; ++y)
      for (int x = 0; x < img.width; ++x) {
        if (!img.dark(x, y)) continue;
        above += y < f.top;
        below += y > f.bottom + 25;  // beyond the tick labels
        left += x < f.left - 50;     // left of the tick labels: the rotated y label
      }
    return std::tuple{above, below, left};
  };
  const auto [aboveBare, belowBare, leftBare] = inkOutsideFrame(bare);
  const auto [aboveFull, belowFull, leftFull] = inkOutsideFrame(unitRange());
  EXPECT_GT(aboveFull, aboveBare + 50);
  EXPECT_GT(belowFull, belowBare + 20);
  EXPECT_GT(leftFull, leftBare + 10);
}

TEST(LinePlotPixels, AutoRangeKeepsAllDataInsideThePlot) {
  Series s;
  s.label = "dice";
  s.x = {0, 1, 2, 3, 4, 5};
  s.y = {0.61, 0.72, 0.80, 0.86, 0.90, 0.91};
  LinePlotOptions o;
  const Image img = toImage(renderLinePlot({s}, o));
  const Frame f = findFrame(img);
  // With a margin, neither extreme touches the frame: the top and bottom 4 rows stay clear.
  for (int x = f.left + 1; x < f.right; ++x)
    for (int y : {f.top + 1, f.top + 2, f.bottom - 2, f.bottom - 1}) EXPECT_FALSE(img.saturated(x, y)) << x << "," << y;
  EXPECT_GT(seriesColours(img, f).front().second, 300);
}

TEST(LinePlotPixels, OverlongTextAndManySeriesAreClippedNotFatal) {
  std::vector<Series> many;
  for (int i = 0; i < 60; ++i) many.push_back(flatSeries(std::string(300, 'W') + std::to_string(i), i / 60.0, i % 2));
  LinePlotOptions o;
  o.title = std::string(5000, 'T');
  o.xLabel = std::string(2000, 'x');
  o.yLabel = std::string(2000, 'y') + "\xc3\xa9\t\x01";  // non-ASCII and control bytes draw as '?'
  for (const auto& [w, h] : {std::pair{100, 100}, {900, 540}, {8000, 120}, {120, 3000}}) {
    o.width = w;
    o.height = h;
    const Raster r = renderLinePlot(many, o);
    EXPECT_EQ(r.rgb.size(), size_t(w) * h * 3);
  }
}

TEST(LinePlotPixels, ExtremeButFiniteValuesDoNotCrash) {
  Series s;
  s.x = {0, 1, 2};
  s.y = {-1e300, 0, 1e300};
  LinePlotOptions o;
  EXPECT_NO_THROW(renderLinePlot({s}, o));
  s.y = {-1.7e308, 0, 1.7e308};  // the span itself overflows
  expectPlotError([&] { renderLinePlot({s}, o); }, "too wide");
  s.y = {5, 5, 5};
  o.yMin = 0.0;
  o.yMax = 1.0;  // data entirely above a fixed range: lines are cut at the frame
  EXPECT_NO_THROW(renderLinePlot({s}, o));
  o.yMax.reset();
  o.yMin = 10.0;  // only yMin, above all data
  EXPECT_NO_THROW(renderLinePlot({s}, o));
}

TEST(LinePlotPixels, SinglePointIsDrawnAsAMarker) {
  Series s;
  s.label = "one";
  s.x = {3};
  s.y = {0.5};
  const Image img = toImage(renderLinePlot({s}, unitRange()));
  const auto colours = seriesColours(img, findFrame(img));
  ASSERT_FALSE(colours.empty());
  EXPECT_GE(colours.front().second, 15);
}

// ---------------------------------------------------------------------------------------------
// Input validation

TEST(LinePlotErrors, RejectsBadInputNamingTheProblem) {
  LinePlotOptions o;
  expectPlotError([&] { renderLinePlot({}, o); }, "no series");

  Series mismatch = flatSeries("site B", 0.5);
  mismatch.y.pop_back();
  expectPlotError([&] { renderLinePlot({flatSeries("a", 1), mismatch}, o); }, "site B");
  expectPlotError([&] { renderLinePlot({mismatch}, o); }, "9 x values but 8 y values");

  Series nan = flatSeries("n", 0.5);
  nan.y[3] = std::numeric_limits<double>::quiet_NaN();
  expectPlotError([&] { renderLinePlot({nan}, o); }, "point 3");
  Series inf = flatSeries("i", 0.5);
  inf.x[2] = std::numeric_limits<double>::infinity();
  expectPlotError([&] { renderLinePlot({inf}, o); }, "not finite");

  Series empty;
  expectPlotError([&] { renderLinePlot({empty}, o); }, "no points");

  const Series ok = flatSeries("ok", 0.5);
  for (const auto& [w, h, bad] : {std::tuple{99, 540, "99"}, {900, 8001, "8001"}, {0, 540, "width 0"}, {900, -5, "-5"}}) {
    LinePlotOptions sized;
    sized.width = w;
    sized.height = h;
    expectPlotError([&] { renderLinePlot({ok}, sized); }, bad);
  }
  LinePlotOptions inverted;
  inverted.yMin = 1.0;
  inverted.yMax = 1.0;
  expectPlotError([&] { renderLinePlot({ok}, inverted); }, "yMin");
  LinePlotOptions nanLimit;
  nanLimit.yMax = std::nan("");
  expectPlotError([&] { renderLinePlot({ok}, nanLimit); }, "yMax");

  LinePlotOptions edge;
  edge.width = 100;
  edge.height = 8000;
  EXPECT_NO_THROW(renderLinePlot({ok}, edge));
}

// ---------------------------------------------------------------------------------------------
// Writing files

TEST_F(PlotFileTest, WritesADecodablePngIdenticalToTheRaster) {
  const std::vector<Series> series{flatSeries("site A", 0.4), flatSeries("site B", 0.8, true)};
  const fs::path path = dir_ / "dice.png";
  writeLinePlotPng(series, unitRange(), path);
  const DecodedPng png = decodePng(readAll(path));
  const Raster expected = renderLinePlot(series, unitRange());
  EXPECT_EQ(png.width, 900);
  EXPECT_EQ(png.height, 540);
  EXPECT_EQ(png.idatChunks, 1);
  EXPECT_EQ(png.rgb, expected.rgb);
  EXPECT_EQ(entries(), std::vector<std::string>{"dice.png"}) << "temporary file left behind";
}

TEST_F(PlotFileTest, ReplacesAnExistingFile) {
  const fs::path path = dir_ / "dice.png";
  std::ofstream(path) << "old content";
  writeLinePlotPng({flatSeries("a", 0.5)}, unitRange(), path);
  EXPECT_NO_THROW(decodePng(readAll(path)));
  EXPECT_EQ(entries(), std::vector<std::string>{"dice.png"});
}

TEST_F(PlotFileTest, MissingDirectoryThrowsNamingThePath) {
  const fs::path path = dir_ / "no-such-dir" / "dice.png";
  expectPlotError([&] { writeLinePlotPng({flatSeries("a", 0.5)}, unitRange(), path); }, path.string());
  EXPECT_FALSE(fs::exists(path));
}

TEST_F(PlotFileTest, FailedRenameLeavesNoTemporaryFile) {
  const fs::path path = dir_ / "taken";
  fs::create_directories(path / "child");  // a non-empty directory cannot be replaced by a file
  expectPlotError([&] { writeLinePlotPng({flatSeries("a", 0.5)}, unitRange(), path); }, path.string());
  EXPECT_EQ(entries(), std::vector<std::string>{"taken"});
}

TEST_F(PlotFileTest, InvalidInputIsReportedWithThePathAndWritesNothing) {
  const fs::path path = dir_ / "dice.png";
  expectPlotError([&] { writeLinePlotPng({}, unitRange(), path); }, path.string());
  EXPECT_TRUE(entries().empty());
}

TEST_F(PlotFileTest, PythonsZlibAcceptsTheFile) {
  // A second, unrelated decoder (CPython's zlib), in case ours shares a misreading with the encoder.
  const char* python = "/usr/bin/python3";
  if (::access(python, X_OK) != 0) GTEST_SKIP() << "no " << python;
  const fs::path png = dir_ / "dice.png";
  const std::vector<Series> series{flatSeries("site A", 0.4), flatSeries("site B", 0.8, true)};
  writeLinePlotPng(series, unitRange(), png);
  const fs::path script = dir_ / "check.py";
  std::ofstream(script) << R"PY(
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "signature"
pos, idat, width, height = 8, b"", 0, 0
while pos < len(data):
    length, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + length]
    (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
    assert zlib.crc32(kind + body) & 0xffffffff == crc, kind
    if kind == b"IHDR":
        width, height, depth, colour, _, _, _ = struct.unpack(">IIBBBBB", body)
        assert (depth, colour) == (8, 2)
    elif kind == b"IDAT":
        idat += body
    pos += 12 + length
raw = zlib.decompress(idat)
stride = 3 * width
assert len(raw) == height * (stride + 1), len(raw)
pixels, prev = bytearray(), bytearray(stride)
for y in range(height):
    f, row = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = row[i - 3] if i >= 3 else 0
        b, c = prev[i], (prev[i - 3] if i >= 3 else 0)
        if f == 1: row[i] = (row[i] + a) & 255
        elif f == 2: row[i] = (row[i] + b) & 255
        elif f == 3: row[i] = (row[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        else: assert f == 0, f
    pixels += row
    prev = row
print(width, height, sum(pixels))
)PY";
  const fs::path out = dir_ / "out.txt";
  const std::string command = std::string(python) + " '" + script.string() + "' '" + png.string() + "' > '" +
                              out.string() + "' 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << readAll(out);
  const Raster raster = renderLinePlot(series, unitRange());
  uint64_t sum = 0;
  for (uint8_t b : raster.rgb) sum += b;
  EXPECT_EQ(readAll(out), "900 540 " + std::to_string(sum) + "\n");
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
