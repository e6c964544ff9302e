#include "tessera/interactive/ClickGeometry.h"

#include <cmath>

#include <gtest/gtest.h>

#include "tessera/common/Error.h"

namespace tessera::interactive {
namespace {

// Rotated 30 degrees about z and 20 about x, with 0.7 x 1.3 x 3.1 mm voxels: no axis of the index
// grid is parallel to an axis of LPS, and voxel sizes differ on all three.
image::Geometry obliqueGeometry() {
  image::Geometry g;
  g.size = {40, 30, 12};
  g.spacing = {0.7, 1.3, 3.1};
  g.origin = {-12.5, 40.25, 7.0};
  const double a = 30.0 * M_PI / 180.0, b = 20.0 * M_PI / 180.0;
  // Rz(a) * Rx(b), row-major; column k is the direction of index axis k.
  const double rz[9] = {std::cos(a), -std::sin(a), 0, std::sin(a), std::cos(a), 0, 0, 0, 1};
  const double rx[9] = {1, 0, 0, 0, std::cos(b), -std::sin(b), 0, std::sin(b), std::cos(b)};
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) {
      double v = 0;
      for (int k = 0; k < 3; ++k) v += rz[r * 3 + k] * rx[k * 3 + c];
      g.direction[r * 3 + c] = v;
    }
  return g;
}

TEST(ClickGeometry, MillimetreAndVoxelClicksLandOnTheSameVoxelOfAnObliqueAnisotropicVolume) {
  const auto g = obliqueGeometry();
  for (const std::array<int64_t, 3> v : {std::array<int64_t, 3>{0, 0, 0}, {39, 29, 11}, {17, 5, 9}, {3, 22, 1}}) {
    const std::array<double, 3> index{static_cast<double>(v[0]), static_cast<double>(v[1]), static_cast<double>(v[2])};
    EXPECT_EQ(clickedVoxel(g, index, ClickSpace::Voxel), v);
    // The voxel centre in LPS, computed here by hand (origin + D * diag(spacing) * index), not
    // with Geometry::indexToPoint, so a wrong matrix convention in either place shows.
    std::array<double, 3> mm{};
    for (int r = 0; r < 3; ++r) {
      mm[r] = g.origin[r];
      for (int c = 0; c < 3; ++c) mm[r] += g.direction[r * 3 + c] * g.spacing[c] * index[c];
    }
    EXPECT_EQ(clickedVoxel(g, mm, ClickSpace::PatientMm), v);
    // 0.4 voxel off-centre along each index axis still lands on the same voxel.
    std::array<double, 3> nudged = mm;
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 3; ++c) nudged[r] += g.direction[r * 3 + c] * g.spacing[c] * (c == 1 ? -0.4 : 0.4);
    EXPECT_EQ(clickedVoxel(g, nudged, ClickSpace::PatientMm), v);
  }
}

TEST(ClickGeometry, AClickAnAxisAlignedGuessWouldPlaceElsewhereStillLandsRight) {
  const auto g = obliqueGeometry();
  const std::array<double, 3> index{20, 10, 6};
  const auto mm = g.indexToPoint(index);
  // Ignoring the direction matrix (what goes wrong in viewers that assume axis-aligned images)
  // gives another voxel; the real mapping gives the right one.
  std::array<double, 3> naive{};
  for (int a = 0; a < 3; ++a) naive[a] = std::floor((mm[a] - g.origin[a]) / g.spacing[a] + 0.5);
  EXPECT_NE((std::array<double, 3>{naive[0], naive[1], naive[2]}), index);
  EXPECT_EQ(clickedVoxel(g, mm, ClickSpace::PatientMm), (std::array<int64_t, 3>{20, 10, 6}));
}

TEST(ClickGeometry, OutsideTheImageIsABadRequestNamingThePosition) {
  const auto g = obliqueGeometry();
  for (const std::array<double, 3> p : {std::array<double, 3>{-0.6, 0, 0}, {40, 0, 0}, {0, 29.6, 0}, {0, 0, 12}}) {
    try {
      clickedVoxel(g, p, ClickSpace::Voxel);
      FAIL() << "accepted an outside click";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::BadRequest);
      EXPECT_NE(std::string(e.what()).find("outside the image"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(clickedVoxel(g, {-0.49, 29.49, 11.49}, ClickSpace::Voxel), (std::array<int64_t, 3>{0, 29, 11}));
  const auto farAway = g.indexToPoint({100, 0, 0});
  EXPECT_THROW(clickedVoxel(g, farAway, ClickSpace::PatientMm), Error);
}

TEST(ClickGeometry, ParsesPositionsAndRefusesMalformedOnes) {
  EXPECT_EQ(parsePosition("1,2.5,-3"), (std::array<double, 3>{1, 2.5, -3}));
  EXPECT_EQ(parsePosition(" 4 , 5 , 6 "), (std::array<double, 3>{4, 5, 6}));
  for (const char* bad : {"", "1,2", "1,2,3,4", "a,b,c", "1;2;3", "nan,1,2", "1,2,inf"}) {
    EXPECT_THROW(parsePosition(bad), Error) << bad;
  }
}

}  // namespace
}  // namespace tessera::interactive
