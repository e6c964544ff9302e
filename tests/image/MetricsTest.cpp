#include <cmath>
#include <limits>
#include <random>

#include "TestSupport.h"
#include "tessera/image/Metrics.h"

namespace tessera::image {
namespace {

using test::errorOf;
using test::fillBox;
using test::grid;

constexpr double kInf = std::numeric_limits<double>::infinity();

TEST(Overlap, HandComputedDiceAndJaccard) {
  // pred: 4 voxels (x 0..3 on row 0); truth: 2 of them plus 2 others. |A∩B| = 2.
  Volume pred(grid(4, 2, 1));
  Volume truth(grid(4, 2, 1));
  fillBox(pred, {0, 0, 0}, {3, 0, 0}, 1);
  fillBox(truth, {2, 0, 0}, {3, 1, 0}, 1);
  EXPECT_DOUBLE_EQ(diceScore(pred, truth, 1), 2.0 * 2 / (4 + 4));
  EXPECT_DOUBLE_EQ(jaccardScore(pred, truth, 1), 2.0 / 6);
}

TEST(Overlap, LabelsAreRoundedValues) {
  Volume pred(grid(3, 1, 1));
  Volume truth(grid(3, 1, 1));
  pred.voxels = {0.9999f, 2.2f, 1.49f};
  truth.voxels = {1.0f, 2.0f, 1.0f};
  EXPECT_DOUBLE_EQ(diceScore(pred, truth, 1), 1.0);
  EXPECT_DOUBLE_EQ(diceScore(pred, truth, 2), 1.0);
}

TEST(Overlap, BothEmptyIsPerfectAndOneEmptyIsWorst) {
  const Volume empty(grid(3, 3, 3));
  Volume one(grid(3, 3, 3));
  one.at(1, 1, 1) = 1;
  EXPECT_DOUBLE_EQ(diceScore(empty, empty, 1), 1.0);
  EXPECT_DOUBLE_EQ(jaccardScore(empty, empty, 1), 1.0);
  EXPECT_DOUBLE_EQ(hausdorff95(empty, empty, 1), 0.0);
  EXPECT_DOUBLE_EQ(diceScore(one, empty, 1), 0.0);
  EXPECT_DOUBLE_EQ(jaccardScore(empty, one, 1), 0.0);
  EXPECT_EQ(hausdorff95(one, empty, 1), kInf);
  EXPECT_EQ(hausdorff95(empty, one, 1), kInf);
}

TEST(Hausdorff95, OneVoxelImage) {
  Volume v(grid(1, 1, 1), 1.0f);
  EXPECT_DOUBLE_EQ(hausdorff95(v, v, 1), 0.0);
}

TEST(Hausdorff95, IdenticalMasksAreZero) {
  Volume v(grid(8, 8, 8));
  fillBox(v, {2, 2, 2}, {5, 6, 4}, 3);
  EXPECT_DOUBLE_EQ(hausdorff95(v, v, 3), 0.0);
}

TEST(Hausdorff95, SingleVoxelOffsetIsOneSpacing) {
  Volume a(grid(5, 5, 5, {2.0, 1.0, 1.0}));
  Volume b(a.geometry);
  a.at(2, 2, 2) = 1;
  b.at(3, 2, 2) = 1;
  EXPECT_DOUBLE_EQ(hausdorff95(a, b, 1), 2.0);
  b.at(3, 2, 2) = 0;
  b.at(3, 3, 2) = 1;  // diagonal: sqrt(2^2 + 1^2)
  EXPECT_DOUBLE_EQ(hausdorff95(a, b, 1), std::sqrt(5.0));
}

TEST(Hausdorff95, ShiftAlongThickAxisUsesItsSpacing) {
  // A 4x4 slab one slice thick, moved one slice along z where slices are 3 mm apart: every
  // surface voxel is 3 mm from the other surface.
  Volume a(grid(8, 8, 6, {1.0, 1.0, 3.0}));
  Volume b(a.geometry);
  fillBox(a, {2, 2, 2}, {5, 5, 2}, 1);
  fillBox(b, {2, 2, 3}, {5, 5, 3}, 1);
  EXPECT_DOUBLE_EQ(hausdorff95(a, b, 1), 3.0);

  // A 4x4x4 cube moved one slice: the 16 bottom/top face voxels (28% of 56) are 3 mm away,
  // so the 95th percentile is 3 mm although most surface voxels coincide.
  Volume c(a.geometry);
  Volume d(a.geometry);
  fillBox(c, {2, 2, 1}, {5, 5, 4}, 1);
  fillBox(d, {2, 2, 2}, {5, 5, 5}, 1);
  EXPECT_DOUBLE_EQ(hausdorff95(c, d, 1), 3.0);
}

TEST(Hausdorff95, IsTheLargerDirectedPercentile) {
  // pred is a 1-voxel dot inside a large truth square (a 2D image): directed pred->truth is the
  // dot's distance to the truth border (4 mm), truth->pred is far larger for the far corners.
  Volume pred(grid(11, 11, 1));
  Volume truth(pred.geometry);
  fillBox(truth, {1, 1, 0}, {9, 9, 0}, 1);
  pred.at(5, 5, 0) = 1;
  // truth surface = border ring of 32 voxels; nearest-rank 95th of their distances to (5,5)
  // is the largest corner distance sqrt(4^2 + 4^2) since ceil(0.95*32) = 31 of 32 and the 4
  // corners are the 4 largest.
  EXPECT_DOUBLE_EQ(hausdorff95(pred, truth, 1), std::sqrt(32.0));
}

// Brute-force reference: surface voxels and their distances by exhaustive search.
std::vector<std::array<int64_t, 3>> surface(const Volume& v, int label) {
  const auto& s = v.geometry.size;
  const auto on = [&](int64_t x, int64_t y, int64_t z) {
    return x >= 0 && y >= 0 && z >= 0 && x < s[0] && y < s[1] && z < s[2] && std::lround(v.at(x, y, z)) == label;
  };
  std::vector<std::array<int64_t, 3>> out;
  for (int64_t z = 0; z < s[2]; ++z)
    for (int64_t y = 0; y < s[1]; ++y)
      for (int64_t x = 0; x < s[0]; ++x)
        if (on(x, y, z) && (!on(x - 1, y, z) || !on(x + 1, y, z) || !on(x, y - 1, z) || !on(x, y + 1, z) ||
                            !on(x, y, z - 1) || !on(x, y, z + 1)))
          out.push_back({x, y, z});
  return out;
}

double bruteDirected(const std::vector<std::array<int64_t, 3>>& from, const std::vector<std::array<int64_t, 3>>& to,
                     const std::array<double, 3>& sp) {
  std::vector<double> d;
  for (const auto& p : from) {
    double best = kInf;
    for (const auto& q : to) {
      double s = 0;
      for (int a = 0; a < 3; ++a) s += std::pow(static_cast<double>(p[a] - q[a]) * sp[a], 2);
      best = std::min(best, std::sqrt(s));
    }
    d.push_back(best);
  }
  std::sort(d.begin(), d.end());
  return d[static_cast<size_t>(std::ceil(0.95 * static_cast<double>(d.size()))) - 1];
}

TEST(Hausdorff95, MatchesBruteForceOnRandomMasks) {
  std::mt19937 rng(42);
  for (int trial = 0; trial < 20; ++trial) {
    const std::array<double, 3> spacing{0.5 + trial % 3, 1.0, 0.7 + 0.9 * (trial % 2)};
    Volume a(grid(9, 7, 6, spacing));
    Volume b(a.geometry);
    // Random blobs: a few random boxes per mask, some touching the image border.
    for (Volume* v : {&a, &b})
      for (int k = 0; k < 3; ++k) {
        std::array<int64_t, 3> lo{}, hi{};
        for (int ax = 0; ax < 3; ++ax) {
          lo[ax] = static_cast<int64_t>(rng() % static_cast<unsigned>(a.geometry.size[ax]));
          hi[ax] = std::min<int64_t>(a.geometry.size[ax] - 1, lo[ax] + static_cast<int64_t>(rng() % 4));
        }
        fillBox(*v, lo, hi, 1);
      }
    const auto sa = surface(a, 1), sb = surface(b, 1);
    const double expected = std::max(bruteDirected(sa, sb, spacing), bruteDirected(sb, sa, spacing));
    EXPECT_NEAR(hausdorff95(a, b, 1), expected, 1e-9) << "trial " << trial;
    EXPECT_NEAR(evaluateLabels(a, b).at(1).hd95Mm, expected, 1e-9) << "trial " << trial;
  }
}

TEST(EvaluateLabels, ReportsEveryLabelWithVolumes) {
  Volume pred(grid(6, 6, 6, {2.0, 2.0, 2.5}));  // 10 mm^3 voxels
  Volume truth(pred.geometry);
  fillBox(pred, {0, 0, 0}, {1, 1, 1}, 1);   // 8 voxels of label 1
  fillBox(truth, {0, 0, 0}, {1, 1, 1}, 1);  // identical
  fillBox(pred, {4, 4, 4}, {4, 4, 4}, 2);   // label 2 only predicted
  fillBox(truth, {3, 0, 0}, {3, 0, 1}, 5);  // label 5 only in truth
  const auto m = evaluateLabels(pred, truth);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_DOUBLE_EQ(m.at(1).dice, 1.0);
  EXPECT_DOUBLE_EQ(m.at(1).jaccard, 1.0);
  EXPECT_DOUBLE_EQ(m.at(1).hd95Mm, 0.0);
  EXPECT_DOUBLE_EQ(m.at(1).volumePredMl, 0.08);
  EXPECT_DOUBLE_EQ(m.at(1).volumeTruthMl, 0.08);
  EXPECT_DOUBLE_EQ(m.at(2).dice, 0.0);
  EXPECT_EQ(m.at(2).hd95Mm, kInf);
  EXPECT_DOUBLE_EQ(m.at(2).volumePredMl, 0.01);
  EXPECT_DOUBLE_EQ(m.at(2).volumeTruthMl, 0.0);
  EXPECT_DOUBLE_EQ(m.at(5).volumeTruthMl, 0.02);
  EXPECT_EQ(m.count(0), 0u);
}

TEST(EvaluateLabels, AgreesWithSingleLabelFunctions) {
  Volume pred(grid(10, 9, 8, {1.0, 1.5, 2.0}));
  Volume truth(pred.geometry);
  fillBox(pred, {1, 1, 1}, {5, 5, 5}, 1);
  fillBox(truth, {2, 1, 1}, {6, 6, 4}, 1);
  fillBox(pred, {6, 6, 6}, {9, 8, 7}, 2);
  fillBox(truth, {7, 6, 5}, {9, 8, 7}, 2);
  const auto m = evaluateLabels(pred, truth);
  for (const int label : {1, 2}) {
    EXPECT_DOUBLE_EQ(m.at(label).dice, diceScore(pred, truth, label));
    EXPECT_DOUBLE_EQ(m.at(label).jaccard, jaccardScore(pred, truth, label));
    EXPECT_DOUBLE_EQ(m.at(label).hd95Mm, hausdorff95(pred, truth, label));
  }
}

TEST(EvaluateLabels, RefusesDifferentGrids) {
  const Volume pred(grid(4, 4, 4));
  const Volume truth(grid(4, 4, 5, {1, 1, 2}));
  const std::string msg = errorOf([&] { evaluateLabels(pred, truth); });
  EXPECT_NE(msg.find("4x4x4 @ 1x1x1 mm"), std::string::npos) << msg;
  EXPECT_NE(msg.find("4x4x5 @ 1x1x2 mm"), std::string::npos) << msg;

  Volume shifted(grid(4, 4, 4));
  shifted.geometry.origin = {5, 0, 0};
  const std::string origin = errorOf([&] { evaluateLabels(pred, shifted); });
  EXPECT_NE(origin.find("origin 0,0,0 vs 5,0,0 mm"), std::string::npos) << origin;
  Volume flipped(grid(4, 4, 4));
  flipped.geometry.direction[0] = -1;
  const std::string direction = errorOf([&] { evaluateLabels(pred, flipped); });
  EXPECT_NE(direction.find("direction differs"), std::string::npos) << direction;
  EXPECT_THROW(diceScore(pred, truth, 1), tessera::Error);
  EXPECT_THROW(hausdorff95(pred, truth, 1), tessera::Error);
}

// Not a timing test (those live in bench/): a brain-sized volume with a large label must
// still give the analytically expected answer for a pure shift.
TEST(Hausdorff95, BrainSizedShiftedSphere) {
  Volume a(grid(181, 217, 181));
  Volume b(a.geometry);
  const double r = 60;
  for (int64_t z = 0; z < 181; ++z)
    for (int64_t y = 0; y < 217; ++y)
      for (int64_t x = 0; x < 181; ++x) {
        const double dx = x - 90.0, dy = y - 108.0, dz = z - 90.0;
        if (dx * dx + dy * dy + dz * dz <= r * r) a.at(x, y, z) = 1;
        if ((dx - 2) * (dx - 2) + dy * dy + dz * dz <= r * r) b.at(x, y, z) = 1;
      }
  const double hd = hausdorff95(a, b, 1);
  EXPECT_GT(hd, 1.0);
  EXPECT_LE(hd, 2.0);
}

}  // namespace
}  // namespace tessera::image
