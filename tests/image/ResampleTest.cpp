#include <cmath>

#include "TestSupport.h"
#include "tessera/image/Resample.h"

namespace tessera::image {
namespace {

using test::fillBox;
using test::grid;

TEST(WithSpacing, KeepsExtentAndOrigin) {
  Geometry g = grid(181, 217, 181);
  g.origin = {-90, 126, -72};
  const Geometry h = withSpacing(g, {2.0, 0.0, 3.0});
  EXPECT_EQ(h.size, (std::array<int64_t, 3>{91, 217, 60}));  // round(90.5) = 91, 181/3 = 60.33
  EXPECT_EQ(h.spacing, (std::array<double, 3>{2.0, 1.0, 3.0}));
  EXPECT_EQ(h.origin, g.origin);
  EXPECT_EQ(h.direction, g.direction);
  EXPECT_EQ(withSpacing(grid(2, 2, 2), {100, 100, 100}).size, (std::array<int64_t, 3>{1, 1, 1}));
  EXPECT_THROW(withSpacing(g, {-1, 1, 1}), tessera::Error);
}

Volume randomVolume(const Geometry& g) {
  Volume v(g);
  for (size_t i = 0; i < v.voxels.size(); ++i) v.voxels[i] = static_cast<float>((i * 7919) % 101);
  return v;
}

TEST(Resample, OntoItsOwnGridIsIdentity) {
  Geometry g = grid(7, 6, 5, {0.7, 1.1, 2.5});
  g.origin = {3, -4, 5};
  g.direction = {0, 1, 0, -1, 0, 0, 0, 0, 1};
  const Volume v = randomVolume(g);
  for (const auto interp : {Interpolation::Linear, Interpolation::Nearest}) {
    const Volume out = resample(v, g, interp);
    EXPECT_TRUE(out.geometry.sameGrid(g));
    EXPECT_EQ(out.voxels, v.voxels);
  }
}

TEST(Resample, DownsampleThenNearestUpRestoresBlocks) {
  // Labels constant on 2x2x2 blocks survive a 2x downsample and a nearest upsample exactly.
  const Geometry fine = grid(8, 8, 8);
  Volume labels(fine);
  fillBox(labels, {0, 0, 0}, {3, 3, 3}, 1);
  fillBox(labels, {4, 2, 4}, {7, 5, 7}, 2);
  fillBox(labels, {2, 6, 0}, {5, 7, 1}, 3);
  // Block centres of the coarse grid sit at fine index 0.5, 2.5, ...: shift its origin there.
  Geometry coarse = withSpacing(fine, {2, 2, 2});
  coarse.origin = fine.indexToPoint({0.5, 0.5, 0.5});
  const Volume small = resample(labels, coarse, Interpolation::Nearest);
  EXPECT_EQ(small.geometry.size, (std::array<int64_t, 3>{4, 4, 4}));
  const Volume back = resample(small, fine, Interpolation::Nearest);
  EXPECT_EQ(back.voxels, labels.voxels);
}

TEST(Resample, LinearIsExactOnARamp) {
  // Trilinear interpolation reproduces any function linear in the index inside the grid.
  Geometry g = grid(10, 8, 6, {1.0, 2.0, 3.0});
  g.origin = {-5, 2, 7};
  Volume ramp(g);
  for (int64_t z = 0; z < 6; ++z)
    for (int64_t y = 0; y < 8; ++y)
      for (int64_t x = 0; x < 10; ++x) ramp.at(x, y, z) = static_cast<float>(2 * x - 3 * y + 5 * z);

  Geometry target = withSpacing(g, {0.5, 0.5, 0.5});  // starts at the same origin, stays inside
  target.size = {18, 28, 30};
  const Volume out = resample(ramp, target, Interpolation::Linear);
  for (int64_t z = 0; z < target.size[2]; ++z)
    for (int64_t y = 0; y < target.size[1]; ++y)
      for (int64_t x = 0; x < target.size[0]; ++x) {
        const auto i = g.pointToIndex(target.indexToPoint({double(x), double(y), double(z)}));
        ASSERT_NEAR(out.at(x, y, z), 2 * i[0] - 3 * i[1] + 5 * i[2], 1e-4) << x << "," << y << "," << z;
      }
}

TEST(Resample, LinearOnARotatedTargetUsesPhysicalSpace) {
  // Source values are a linear function of the physical point; any target grid inside the
  // source sees the same function, whatever its orientation (general, non-separable path).
  const Geometry g = grid(12, 12, 12);
  Volume ramp(g);
  const auto f = [](const std::array<double, 3>& p) { return 0.5 * p[0] + 0.25 * p[1] - p[2]; };
  for (int64_t z = 0; z < 12; ++z)
    for (int64_t y = 0; y < 12; ++y)
      for (int64_t x = 0; x < 12; ++x) ramp.at(x, y, z) = static_cast<float>(f(g.indexToPoint({double(x), double(y), double(z)})));

  Geometry target = grid(5, 5, 5, {1.3, 1.1, 0.9});
  const double c = std::cos(0.4), s = std::sin(0.4);
  target.direction = {c, -s, 0, s, c, 0, 0, 0, 1};
  target.origin = {5, 2, 3};
  const Volume out = resample(ramp, target, Interpolation::Linear);
  for (int64_t z = 0; z < 5; ++z)
    for (int64_t y = 0; y < 5; ++y)
      for (int64_t x = 0; x < 5; ++x)
        ASSERT_NEAR(out.at(x, y, z), f(target.indexToPoint({double(x), double(y), double(z)})), 1e-4);
}

TEST(Resample, OutsidePointsTakeTheNearestEdgeValue) {
  Volume v(grid(3, 1, 1));
  v.voxels = {1, 2, 3};
  Geometry target = grid(7, 1, 1);
  target.origin = {-2, 0, 0};
  const Volume lin = resample(v, target, Interpolation::Linear);
  EXPECT_EQ(lin.voxels, (std::vector<float>{1, 1, 1, 2, 3, 3, 3}));
  const Volume near = resample(v, target, Interpolation::Nearest);
  EXPECT_EQ(near.voxels, lin.voxels);
}

}  // namespace
}  // namespace tessera::image
