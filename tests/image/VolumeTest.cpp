#include <cmath>

#include "TestSupport.h"
#include "tessera/image/Volume.h"

namespace tessera::image {
namespace {

using test::errorOf;
using test::grid;

// A grid rotated 90 degrees about z with x flipped, anisotropic and off-origin.
Geometry obliqueGrid() {
  Geometry g = grid(4, 5, 6, {0.5, 2.0, 3.0});
  g.origin = {10.0, -20.0, 30.0};
  g.direction = {0, -1, 0,   // column 0 = (0,1,0): index x runs along +y
                 1, 0, 0,    // column 1 = (-1,0,0): index y runs along -x
                 0, 0, 1};
  return g;
}

TEST(Geometry, IndexToPointFollowsDirectionColumns) {
  const Geometry g = obliqueGrid();
  const auto p = g.indexToPoint({1.0, 1.0, 1.0});
  EXPECT_DOUBLE_EQ(p[0], 10.0 - 2.0);
  EXPECT_DOUBLE_EQ(p[1], -20.0 + 0.5);
  EXPECT_DOUBLE_EQ(p[2], 30.0 + 3.0);
}

TEST(Geometry, PointToIndexInvertsIndexToPoint) {
  const Geometry g = obliqueGrid();
  const std::array<double, 3> index{1.25, -3.5, 7.0};
  const auto back = g.pointToIndex(g.indexToPoint(index));
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(back[i], index[i], 1e-12);
}

TEST(Geometry, SingularGridIsAnError) {
  Geometry g = grid(2, 2, 2, {1.0, 0.0, 1.0});
  EXPECT_THROW(g.pointToIndex({0, 0, 0}), tessera::Error);
}

TEST(Geometry, SameGridToleratesRoundingOnly) {
  const Geometry a = obliqueGrid();
  Geometry b = a;
  b.spacing[0] *= 1.0 + 1e-7;
  b.origin[1] += 1e-6;
  EXPECT_TRUE(a.sameGrid(b));
  b = a;
  b.size[2] += 1;
  EXPECT_FALSE(a.sameGrid(b));
  b = a;
  b.origin[0] += 0.1;
  EXPECT_FALSE(a.sameGrid(b));
  b = a;
  b.spacing[2] = 3.01;
  EXPECT_FALSE(a.sameGrid(b));
  b = a;
  b.direction[0] = 0.01;
  EXPECT_FALSE(a.sameGrid(b));
}

TEST(Geometry, DescribeNamesSizeAndSpacing) {
  EXPECT_EQ(grid(181, 217, 181).describe(), "181x217x181 @ 1x1x1 mm");
  EXPECT_EQ(grid(2, 3, 4, {0.5, 0.9375, 3}).describe(), "2x3x4 @ 0.5x0.9375x3 mm");
}

TEST(Volume, ConstructorFillsAndValueRangeFindsExtremes) {
  Volume v(grid(3, 2, 2), 1.5f);
  ASSERT_EQ(v.voxels.size(), 12u);
  EXPECT_EQ(v.valueRange(), std::make_pair(1.5f, 1.5f));
  v.at(2, 1, 1) = -4.0f;
  v.at(0, 1, 0) = 9.0f;
  EXPECT_EQ(v.valueRange(), std::make_pair(-4.0f, 9.0f));
  EXPECT_EQ(Volume().valueRange(), std::make_pair(0.0f, 0.0f));
}

TEST(Volume, IndexIsXFastest) {
  Volume v(grid(3, 4, 5));
  EXPECT_EQ(v.index(1, 2, 3), 1 + 3 * (2 + 4 * 3));
}

// Voxel value encodes its index so extracted slices can be traced back.
Volume codedVolume(const Geometry& g) {
  Volume v(g);
  for (int64_t z = 0; z < g.size[2]; ++z)
    for (int64_t y = 0; y < g.size[1]; ++y)
      for (int64_t x = 0; x < g.size[0]; ++x) v.at(x, y, z) = static_cast<float>(100 * z + 10 * y + x);
  return v;
}

TEST(ExtractSlices, TakesEveryOtherSliceAndKeepsPhysicalPositions) {
  const Geometry g = obliqueGrid();
  const Volume v = codedVolume(g);
  const Volume out = extractSlices(v, 2, {1, 3, 5});
  EXPECT_EQ(out.geometry.size, (std::array<int64_t, 3>{4, 5, 3}));
  EXPECT_DOUBLE_EQ(out.geometry.spacing[2], 6.0);
  for (int64_t k = 0; k < 3; ++k) {
    const auto expected = g.indexToPoint({2.0, 3.0, static_cast<double>(1 + 2 * k)});
    const auto actual = out.geometry.indexToPoint({2.0, 3.0, static_cast<double>(k)});
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(actual[i], expected[i], 1e-12);
    EXPECT_EQ(out.at(2, 3, k), v.at(2, 3, 1 + 2 * k));
  }
}

TEST(ExtractSlices, AlongXWithSingleSliceKeepsSpacing) {
  const Geometry g = obliqueGrid();
  const Volume v = codedVolume(g);
  const Volume out = extractSlices(v, 0, {2});
  EXPECT_EQ(out.geometry.size, (std::array<int64_t, 3>{1, 5, 6}));
  EXPECT_DOUBLE_EQ(out.geometry.spacing[0], 0.5);
  const auto origin = g.indexToPoint({2.0, 0.0, 0.0});
  for (int i = 0; i < 3; ++i) EXPECT_DOUBLE_EQ(out.geometry.origin[i], origin[i]);
  EXPECT_EQ(out.at(0, 4, 5), v.at(2, 4, 5));
}

TEST(ExtractSlices, DescendingIndicesFlipTheAxis) {
  const Geometry g = obliqueGrid();
  const Volume v = codedVolume(g);
  const Volume out = extractSlices(v, 1, {4, 2, 0});
  EXPECT_DOUBLE_EQ(out.geometry.spacing[1], 4.0);
  for (int64_t k = 0; k < 3; ++k) {
    const auto expected = g.indexToPoint({0.0, static_cast<double>(4 - 2 * k), 0.0});
    const auto actual = out.geometry.indexToPoint({0.0, static_cast<double>(k), 0.0});
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(actual[i], expected[i], 1e-12);
    EXPECT_EQ(out.at(1, k, 2), v.at(1, 4 - 2 * k, 2));
  }
}

TEST(ExtractSlices, RejectsBadAxisAndIndices) {
  const Volume v(grid(2, 2, 3));
  EXPECT_NE(errorOf([&] { extractSlices(v, 3, {0}); }).find("axis 3"), std::string::npos);
  EXPECT_NE(errorOf([&] { extractSlices(v, -1, {0}); }).find("axis -1"), std::string::npos);
  EXPECT_NE(errorOf([&] { extractSlices(v, 2, {0, 3}); }).find("slice 3"), std::string::npos);
  EXPECT_NE(errorOf([&] { extractSlices(v, 2, {-1}); }).find("slice -1"), std::string::npos);
  EXPECT_THROW(extractSlices(v, 2, {}), tessera::Error);
}

}  // namespace
}  // namespace tessera::image
