// White-box tests of the click encoding (src/nn/src/GuidanceMaps.h).
#include <gtest/gtest.h>

#include <cmath>

#include "GuidanceMaps.h"
#include "tessera/image/Resample.h"

using namespace tessera;
namespace impl = tessera::nn::detail;

namespace {

image::Geometry obliqueGrid() {
  image::Geometry g;
  g.size = {40, 30, 20};
  g.spacing = {1.0, 1.0, 2.0};
  g.origin = {5.0, -7.0, 3.0};
  g.direction = {0, -1, 0, 1, 0, 0, 0, 0, 1};
  return g;
}

// Index (x, y, z) of the largest value of a [Z, Y, X] map.
std::array<int64_t, 3> peak(const torch::Tensor& zyx) {
  const int64_t flat = zyx.argmax().item<int64_t>();
  return {flat % zyx.size(2), flat / zyx.size(2) % zyx.size(1), flat / (zyx.size(2) * zyx.size(1))};
}

}  // namespace

TEST(GuidanceMaps, ClickLandsOnTheSamePhysicalPointOfTheNetworksGrid) {
  const auto input = obliqueGrid();
  // The network works at 2 mm in-plane and keeps the slices.
  const auto network = image::withSpacing(input, {2.0, 2.0, 0.0});
  model::NetworkSpec spec;
  spec.axis = 2;
  nn::Guidance g;
  g.clicks.push_back({{20, 10, 7}, true});
  g.clicks.push_back({{4, 26, 19}, false});
  const auto sigma = impl::clickSigmaVoxels(spec, network);
  EXPECT_DOUBLE_EQ(sigma[0], 3.0);
  EXPECT_DOUBLE_EQ(sigma[1], 3.0);
  EXPECT_DOUBLE_EQ(sigma[2], 3.0);  // 3 voxels of 2 mm in-plane = 6 mm = 3 slices of 2 mm
  const auto maps = impl::guidanceMaps(g, input, network, sigma);
  ASSERT_EQ(maps.sizes(), (std::vector<int64_t>{2, 20, 15, 20}));
  EXPECT_EQ(peak(maps[0]), (std::array<int64_t, 3>{10, 5, 7}));
  EXPECT_EQ(peak(maps[1]), (std::array<int64_t, 3>{2, 13, 19}));
  EXPECT_NEAR(maps[0][7][5][10].item<float>(), 1.0f, 1e-6);
  // Each click only in its own channel.
  EXPECT_EQ(maps[1][7][5][10].item<float>(), 0.0f);
  EXPECT_EQ(maps[0][19][13][2].item<float>(), 0.0f);
  // Along the slice axis the map fades with the in-plane width in mm and ends at 3 sigma.
  EXPECT_NEAR(maps[0][8][5][10].item<float>(), std::exp(-0.5 / 9.0), 1e-5);
  EXPECT_GT(maps[0][7 + 9][5][10].item<float>(), 0.0f);
  EXPECT_EQ(maps[0][7 + 10][5][10].item<float>(), 0.0f);
  EXPECT_NEAR(maps[0][0][5][10].item<float>(), std::exp(-0.5 * 49.0 / 9.0), 1e-5);
}

TEST(GuidanceMaps, OverlappingClicksAreClampedToOne) {
  const auto grid = obliqueGrid();
  nn::Guidance g;
  for (int i = 0; i < 3; ++i) g.clicks.push_back({{20, 15, 10}, true});
  g.clicks.push_back({{21, 15, 10}, true});
  const auto maps = impl::guidanceMaps(g, grid, grid, {3.0, 3.0, 3.0});
  EXPECT_FLOAT_EQ(maps.max().item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(maps[0][10][15][20].item<float>(), 1.0f);
  EXPECT_GT(maps[0][10][15][28].item<float>(), 0.0f);
  EXPECT_LT(maps[0][10][15][28].item<float>(), 1.0f);
  EXPECT_EQ(maps[1].abs().sum().item<float>(), 0.0f);
}

TEST(GuidanceMaps, ThinSlicesReachFurtherInSlicesThanThickOnes) {
  model::NetworkSpec spec;
  spec.axis = 2;
  auto grid = obliqueGrid();
  grid.spacing = {1.0, 1.0, 0.5};
  EXPECT_DOUBLE_EQ(impl::clickSigmaVoxels(spec, grid)[2], 6.0);
  grid.spacing = {1.0, 1.0, 6.0};
  EXPECT_DOUBLE_EQ(impl::clickSigmaVoxels(spec, grid)[2], 0.5);
  spec.dims = 3;
  EXPECT_DOUBLE_EQ(impl::clickSigmaVoxels(spec, grid)[2], 3.0);
}

TEST(GuidanceMaps, ClickOutsideTheImageIsRefused) {
  const auto grid = obliqueGrid();
  nn::Guidance g;
  g.clicks.push_back({{39, 29, 19}, true});
  EXPECT_NO_THROW(impl::checkClicksInside(g, grid));
  g.clicks.push_back({{-1, 0, 0}, false});
  EXPECT_THROW(impl::checkClicksInside(g, grid), Error);
}
