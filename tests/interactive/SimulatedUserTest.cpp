// The standard protocol's user on hand-made masks (which region, which voxel, which sign) and the
// click loop with oracle callbacks (NoC bookkeeping, stopping rules).
#include <gtest/gtest.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "tessera/common/Error.h"
#include "tessera/image/Metrics.h"
#include "tessera/interactive/SimulatedUser.h"

using tessera::image::Geometry;
using tessera::image::Volume;
using namespace tessera::interactive;

namespace {

Volume blank(std::array<int64_t, 3> size = {32, 32, 32}, std::array<double, 3> spacing = {1, 1, 1}) {
  Geometry g;
  g.size = size;
  g.spacing = spacing;
  return Volume(g);
}

void box(Volume& v, std::array<int64_t, 3> lo, std::array<int64_t, 3> hi, float value) {
  for (int64_t z = lo[2]; z <= hi[2]; ++z)
    for (int64_t y = lo[1]; y <= hi[1]; ++y)
      for (int64_t x = lo[0]; x <= hi[0]; ++x) v.at(x, y, z) = value;
}

void ball(Volume& v, std::array<double, 3> centre, double radius, const Volume* source) {
  const auto& s = v.geometry.size;
  for (int64_t z = 0; z < s[2]; ++z)
    for (int64_t y = 0; y < s[1]; ++y)
      for (int64_t x = 0; x < s[0]; ++x) {
        const double d = std::hypot(x - centre[0], y - centre[1], z - centre[2]);
        if (d <= radius) v.at(x, y, z) = source ? source->at(x, y, z) : 1.0f;
      }
}

}  // namespace

TEST(SimulatedUser, ClicksPositiveAtTheCentreOfAMissedStructure) {
  Volume truth = blank(), mask = blank();
  box(truth, {10, 12, 14}, {18, 20, 22}, 1.0f);
  const auto click = nextClick(mask, truth);
  ASSERT_TRUE(click);
  EXPECT_TRUE(click->click.positive);
  EXPECT_EQ(click->click.voxel, (std::array<int64_t, 3>{14, 16, 18}));
  EXPECT_EQ(click->regionVoxels, 9 * 9 * 9);
  EXPECT_DOUBLE_EQ(click->borderDistanceMm, 5.0);  // 5 voxels to the first voxel outside
}

TEST(SimulatedUser, ClicksNegativeWhenTheFalsePositiveRegionIsLarger) {
  Volume truth = blank(), mask = blank();
  box(truth, {2, 2, 2}, {10, 10, 10}, 1.0f);
  box(mask, {2, 2, 2}, {10, 10, 10}, 1.0f);
  box(mask, {4, 4, 4}, {6, 6, 6}, 0.0f);          // a 27-voxel miss
  box(mask, {18, 18, 18}, {28, 26, 24}, 1.0f);    // a 11x9x7 false positive
  const auto click = nextClick(mask, truth);
  ASSERT_TRUE(click);
  EXPECT_FALSE(click->click.positive);
  EXPECT_EQ(click->click.voxel, (std::array<int64_t, 3>{23, 22, 21}));
  EXPECT_EQ(click->regionVoxels, 11 * 9 * 7);
}

TEST(SimulatedUser, ClicksPositiveWhenTheMissIsLarger) {
  Volume truth = blank(), mask = blank();
  box(truth, {2, 2, 2}, {12, 12, 12}, 1.0f);
  box(mask, {2, 2, 2}, {12, 12, 12}, 1.0f);
  box(mask, {4, 4, 4}, {8, 8, 8}, 0.0f);          // a 125-voxel miss
  box(mask, {20, 20, 20}, {22, 22, 22}, 1.0f);    // a 27-voxel false positive
  const auto click = nextClick(mask, truth);
  ASSERT_TRUE(click);
  EXPECT_TRUE(click->click.positive);
  EXPECT_EQ(click->click.voxel, (std::array<int64_t, 3>{6, 6, 6}));
}

TEST(SimulatedUser, CentreIsMeasuredInMillimetres) {
  // One region: a cube (5x5x5 voxels) joined to a flat slab (9x9x3). In voxels the cube's centre
  // lies deeper (3 against 2); with 3 mm slices the slab's centre does (5 mm against 3 mm).
  auto make = [](std::array<double, 3> spacing) {
    Volume truth = blank({20, 14, 10}, spacing), mask = blank({20, 14, 10}, spacing);
    box(truth, {2, 2, 2}, {6, 6, 6}, 1.0f);
    box(truth, {7, 2, 2}, {15, 10, 4}, 1.0f);
    return nextClick(mask, truth);
  };
  const auto isotropic = make({1, 1, 1});
  ASSERT_TRUE(isotropic);
  EXPECT_EQ(isotropic->click.voxel, (std::array<int64_t, 3>{4, 4, 4}));
  const auto anisotropic = make({1, 1, 3});
  ASSERT_TRUE(anisotropic);
  EXPECT_EQ(anisotropic->click.voxel, (std::array<int64_t, 3>{11, 6, 3}));
  EXPECT_DOUBLE_EQ(anisotropic->borderDistanceMm, 5.0);
}

TEST(SimulatedUser, NoClickWhenTheMaskIsRightAndErrorsForOtherGrids) {
  Volume truth = blank(), mask = blank();
  box(truth, {3, 3, 3}, {5, 5, 5}, 1.0f);
  box(mask, {3, 3, 3}, {5, 5, 5}, 1.0f);
  EXPECT_FALSE(nextClick(mask, truth));
  EXPECT_THROW(nextClick(mask, blank({8, 8, 8})), tessera::Error);
}

TEST(SimulatedUser, NumberOfClicksToReachAThreshold) {
  bool reached = false;
  EXPECT_EQ(clicksToReach({0.5, 0.86, 0.92}, 0.85, 20, &reached), 1);
  EXPECT_TRUE(reached);
  EXPECT_EQ(clicksToReach({0.5, 0.86, 0.92}, 0.90, 20, &reached), 2);
  EXPECT_EQ(clicksToReach({0.95}, 0.90, 20, &reached), 0);
  EXPECT_EQ(clicksToReach({0.1, 0.2}, 0.90, 20, &reached), 21);
  EXPECT_FALSE(reached);
}

TEST(SimulatedUser, OracleLoopReachesTheTarget) {
  Volume truth = blank();
  ball(truth, {15.5, 16, 15}, 9.0, nullptr);
  // An oracle "model": each click copies the truth within 5 voxels of the click.
  Volume mask = blank();
  const ApplyClick apply = [&](const tessera::nn::Click& click) {
    ball(mask, {double(click.voxel[0]), double(click.voxel[1]), double(click.voxel[2])}, 5.0, &truth);
    return mask;
  };
  const auto result = runClickLoop(blank(), truth, apply);
  EXPECT_TRUE(result.reached90);
  EXPECT_TRUE(result.reached85);
  EXPECT_LE(result.noc85, result.noc90);
  EXPECT_GE(result.dicePerClick.back(), 0.9);
  EXPECT_EQ(result.dicePerClick.size(), result.secondsPerClick.size() + 1);
  EXPECT_EQ(result.noc90, result.clicksUsed());  // stops at the target
  for (size_t i = 1; i < result.dicePerClick.size(); ++i) EXPECT_GE(result.dicePerClick[i], result.dicePerClick[i - 1]);
  for (const auto& c : result.clicks) EXPECT_TRUE(c.positive);
  const auto json = toJson(result);
  EXPECT_EQ(json.at("noc90").get<int>(), result.noc90);
  EXPECT_EQ(json.at("dice_per_click").size(), result.dicePerClick.size());
}

TEST(SimulatedUser, LoopThatNeverGetsThereReportsBudgetPlusOne) {
  Volume truth = blank();
  box(truth, {4, 4, 4}, {12, 12, 12}, 1.0f);
  ClickLoopOptions options;
  options.maxClicks = 5;
  const auto result = runClickLoop(blank(), truth, [](const tessera::nn::Click&) { return blank(); }, options);
  EXPECT_EQ(result.clicksUsed(), 5);
  EXPECT_EQ(result.noc90, 6);
  EXPECT_FALSE(result.reached90);
  EXPECT_EQ(result.noc85, 6);
}
