#include "tessera/interactive/SlicePropagation.h"

#include <cmath>
#include <functional>
#include <limits>

#include <gtest/gtest.h>

#include "tessera/common/Error.h"
#include "tessera/image/Metrics.h"

namespace tessera::interactive {
namespace {

using image::Geometry;
using image::Volume;

// A small deterministic "noise" so that the texture is not a pure sinusoid.
float grain(int64_t x, int64_t y, int64_t z) {
  uint32_t h = static_cast<uint32_t>(x * 73856093) ^ static_cast<uint32_t>(y * 19349663) ^ static_cast<uint32_t>(z * 83492791);
  h ^= h >> 13;
  h *= 0x5bd1e995u;
  h ^= h >> 15;
  return static_cast<float>(h % 1000) / 1000.0f - 0.5f;
}

struct Scene {
  Volume image, truth;
};

// Ellipsoids whose cross-sections grow, shrink and slide sideways from slice to slice, in a
// textured, noisy background; each is given as (label, centre x at z=0, x drift per slice, centre y,
// centre z, semi-axes).
struct Blob {
  int label;
  double cx0, drift, cy, cz, ax, ay, az;
};

Scene makeScene(const std::vector<Blob>& blobs, std::array<int64_t, 3> size = {64, 64, 40}) {
  Geometry g;
  g.size = size;
  g.spacing = {1.0, 1.0, 1.5};
  Scene s{Volume(g), Volume(g)};
  for (int64_t z = 0; z < size[2]; ++z)
    for (int64_t y = 0; y < size[1]; ++y)
      for (int64_t x = 0; x < size[0]; ++x) {
        float value = 40.0f + 12.0f * std::sin(0.45f * x) * std::cos(0.35f * y) + 10.0f * grain(x, y, z);
        for (const auto& b : blobs) {
          const double cx = b.cx0 + b.drift * z;
          const double dx = (x - cx) / b.ax, dy = (y - b.cy) / b.ay, dz = (z - b.cz) / b.az;
          if (dx * dx + dy * dy + dz * dz <= 1.0) {
            value = 100.0f + 40.0f * b.label + 12.0f * std::sin(0.9f * static_cast<float>(x - cx)) *
                                                 std::sin(0.8f * static_cast<float>(y)) + 10.0f * grain(x, y, z);
            s.truth.at(x, y, z) = static_cast<float>(b.label);
          }
        }
        s.image.at(x, y, z) = value;
      }
  return s;
}

Scene movingEllipsoid() { return makeScene({{1, 22.0, 0.45, 32.0, 20.0, 14.0, 10.0, 16.0}}); }

// Only the drawn slices of the truth are handed over; the rest is noise that must be ignored.
Volume drawn(const Volume& truth, const std::vector<int64_t>& slices) {
  Volume annotated(truth.geometry, 7.5f);
  for (int64_t z : slices)
    for (int64_t y = 0; y < truth.geometry.size[1]; ++y)
      for (int64_t x = 0; x < truth.geometry.size[0]; ++x) annotated.at(x, y, z) = truth.at(x, y, z);
  return annotated;
}

TEST(SlicePropagation, ThreeDrawnSlicesRecoverAMovingChangingEllipsoidAndBeatCopyingTheNearestSlice) {
  const auto scene = movingEllipsoid();
  const std::vector<int64_t> slices{30, 10, 20};  // any order
  const auto annotated = drawn(scene.truth, slices);
  const auto proxy = propagateSlices(scene.image, annotated, 2, slices);
  const auto copy = copyNearestSlice(annotated, 2, slices);
  const double proxyDice = image::diceScore(proxy.labels, scene.truth, 1);
  const double copyDice = image::diceScore(copy, scene.truth, 1);
  EXPECT_GE(proxyDice, 0.9);
  EXPECT_GT(proxyDice, copyDice + 0.02) << "copy " << copyDice;
  // Drawn slices come back exactly, and no label is invented.
  for (int64_t z : slices)
    for (int64_t y = 0; y < 64; ++y)
      for (int64_t x = 0; x < 64; ++x) ASSERT_EQ(proxy.labels.at(x, y, z), scene.truth.at(x, y, z));
  for (float v : proxy.labels.voxels) ASSERT_TRUE(v == 0.0f || v == 1.0f);
  EXPECT_TRUE(proxy.labels.geometry.sameGrid(scene.image.geometry));
}

TEST(SlicePropagation, OneDrawnSliceFollowsTheMovingStructureByRegistrationAlone) {
  // One-sided propagation has no second contour to interpolate towards: only the slice-to-slice
  // registration can move the shape along with the image.
  const auto scene = movingEllipsoid();
  PropagationOptions options;
  options.maxDistance = 8;
  const auto annotated = drawn(scene.truth, {20});
  const auto proxy = propagateSlices(scene.image, annotated, 2, {20}, options);
  std::vector<int64_t> reached;
  for (int64_t z = 12; z <= 28; ++z) reached.push_back(z);
  const auto truth = image::extractSlices(scene.truth, 2, reached);
  const double proxyDice = image::diceScore(image::extractSlices(proxy.labels, 2, reached), truth, 1);
  const double copyDice = image::diceScore(image::extractSlices(copyNearestSlice(annotated, 2, {20}), 2, reached), truth, 1);
  EXPECT_GE(proxyDice, 0.9);
  EXPECT_GT(proxyDice, copyDice + 0.05) << "copy " << copyDice;
}

TEST(SlicePropagation, WeightsAreOneOverOnePlusTheDistanceToTheNearestDrawnSliceAndZeroOutOfReach) {
  const auto scene = movingEllipsoid();
  const std::vector<int64_t> slices{12, 20, 27};
  PropagationOptions options;
  options.maxDistance = 3;
  const auto proxy = propagateSlices(scene.image, drawn(scene.truth, slices), 2, slices, options);
  for (int64_t z = 0; z < 40; ++z) {
    float expected = 0.0f;
    if (z >= 9 && z <= 30) {
      int64_t d = 100;
      for (int64_t s : slices) d = std::min<int64_t>(d, std::llabs(z - s));
      expected = 1.0f / (1.0f + static_cast<float>(d));
    }
    EXPECT_FLOAT_EQ(proxy.weights.at(5, 40, z), expected) << "slice " << z;
    EXPECT_FLOAT_EQ(proxy.weights.at(60, 3, z), expected) << "slice " << z;
  }
  // Out of reach: nothing is propagated there, although the ellipsoid is present on slice 8.
  for (int64_t y = 0; y < 64; ++y)
    for (int64_t x = 0; x < 64; ++x) ASSERT_EQ(proxy.labels.at(x, y, 8), 0.0f);
  EXPECT_EQ(proxy.propagatedSlices, 22 - 3);
}

TEST(SlicePropagation, AStackOfIdenticalSlicesCarriesTheDrawnMaskUnchanged) {
  Geometry g;
  g.size = {40, 36, 12};
  Volume image(g), truth(g);
  for (int64_t z = 0; z < 12; ++z)
    for (int64_t y = 0; y < 36; ++y)
      for (int64_t x = 0; x < 40; ++x) {
        const bool inside = (x - 18) * (x - 18) / 100.0 + (y - 17) * (y - 17) / 49.0 <= 1.0 || (x > 30 && y > 28);
        truth.at(x, y, z) = inside ? 1.0f : 0.0f;
        image.at(x, y, z) = (inside ? 120.0f : 30.0f) + 8.0f * std::sin(0.7f * x + 0.3f * y);
      }
  const auto proxy = propagateSlices(image, truth, 2, {2, 9});
  for (int64_t z = 0; z < 12; ++z)
    for (int64_t y = 0; y < 36; ++y)
      for (int64_t x = 0; x < 40; ++x) ASSERT_EQ(proxy.labels.at(x, y, z), truth.at(x, y, z)) << x << "," << y << "," << z;
}

TEST(SlicePropagation, SeveralLabelsAreCarriedAtOnceIncludingOneDrawnOnOneSideOnly) {
  // Label 1 drifts right, label 2 is elsewhere and shrinks; label 3 only exists near slice 10.
  const auto scene = makeScene({{1, 14.0, 0.35, 20.0, 20.0, 10.0, 8.0, 17.0},
                                {2, 46.0, -0.2, 44.0, 22.0, 9.0, 12.0, 15.0},
                                {3, 40.0, 0.0, 14.0, 9.0, 6.0, 5.0, 5.0}});
  const std::vector<int64_t> slices{8, 20, 32};
  const auto annotated = drawn(scene.truth, slices);
  const auto proxy = propagateSlices(scene.image, annotated, 2, slices);
  const auto copy = copyNearestSlice(annotated, 2, slices);
  double proxyMean = 0, copyMean = 0;
  for (int label = 1; label <= 2; ++label) {
    const double d = image::diceScore(proxy.labels, scene.truth, label);
    EXPECT_GE(d, 0.85) << "label " << label;
    proxyMean += d / 2;
    copyMean += image::diceScore(copy, scene.truth, label) / 2;
  }
  EXPECT_GT(proxyMean, copyMean);
  EXPECT_GE(image::diceScore(proxy.labels, scene.truth, 3), 0.65);
  for (float v : proxy.labels.voxels) ASSERT_TRUE(v == 0.0f || v == 1.0f || v == 2.0f || v == 3.0f);
}

TEST(SlicePropagation, EveryAxisWorks) {
  // The moving ellipsoid with its z axis laid along x (axis 0) and along y (axis 1).
  const auto scene = movingEllipsoid();
  for (int axis : {0, 1}) {
    Geometry g;
    g.size = {64, 64, 64};
    g.size[axis] = 40;
    g.size[2] = 64;
    Volume image(g), truth(g);
    for (int64_t z = 0; z < 40; ++z)
      for (int64_t b = 0; b < 64; ++b)
        for (int64_t a = 0; a < 64; ++a) {
          std::array<int64_t, 3> v{};
          v[axis] = z;
          v[axis == 0 ? 1 : 0] = a;
          v[2] = b;
          image.at(v[0], v[1], v[2]) = scene.image.at(a, b, z);
          truth.at(v[0], v[1], v[2]) = scene.truth.at(a, b, z);
        }
    const std::vector<int64_t> slices{10, 20, 30};
    Volume annotated(g, 0.0f);
    std::array<int64_t, 3> v{};
    for (v[2] = 0; v[2] < g.size[2]; ++v[2])
      for (v[1] = 0; v[1] < g.size[1]; ++v[1])
        for (v[0] = 0; v[0] < g.size[0]; ++v[0])
          if (v[axis] == 10 || v[axis] == 20 || v[axis] == 30) annotated.at(v[0], v[1], v[2]) = truth.at(v[0], v[1], v[2]);
    const auto result = propagateSlices(image, annotated, axis, slices);
    EXPECT_GE(image::diceScore(result.labels, truth, 1), 0.9) << "axis " << axis;
  }
}

TEST(SlicePropagation, CopyNearestSliceTakesTheLowerSliceOnATie) {
  Geometry g;
  g.size = {2, 1, 7};
  Volume annotated(g, 0.0f);
  annotated.at(0, 0, 1) = 1.0f;
  annotated.at(1, 0, 5) = 2.0f;
  const auto copy = copyNearestSlice(annotated, 2, {5, 1});
  const float expected[7][2] = {{1, 0}, {1, 0}, {1, 0}, {1, 0}, {0, 2}, {0, 2}, {0, 2}};
  for (int64_t z = 0; z < 7; ++z)
    for (int64_t x = 0; x < 2; ++x) EXPECT_EQ(copy.at(x, 0, z), expected[z][x]) << x << "," << z;
}

void expectBadRequest(const std::function<void()>& call, const std::string& naming) {
  try {
    call();
    ADD_FAILURE() << "no error; expected one naming '" << naming << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::BadRequest) << e.what();
    EXPECT_NE(std::string(e.what()).find(naming), std::string::npos) << e.what();
  }
}

TEST(SlicePropagation, BadInputsAreRefusedNamingTheValue) {
  Geometry g;
  g.size = {16, 16, 10};
  const Volume image(g, 1.0f);
  Volume labels(g, 0.0f);
  const auto both = [&](int axis, std::vector<int64_t> slices, const Volume& l, const std::string& naming) {
    expectBadRequest([&] { propagateSlices(image, l, axis, slices); }, naming);
    expectBadRequest([&] { copyNearestSlice(l, axis, slices); }, naming);
  };
  both(3, {1}, labels, "axis 3");
  both(-1, {1}, labels, "axis -1");
  both(2, {}, labels, "at least one");
  both(2, {10}, labels, "slice 10");
  both(2, {-1}, labels, "slice -1");
  both(0, {16}, labels, "slice 16");
  both(2, {4, 2, 4}, labels, "slice 4 is listed twice");

  for (float bad : {1.5f, -1.0f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    Volume l = labels;
    l.at(3, 5, 4) = bad;
    both(2, {1, 4}, l, "(3,5)");
    // The same value on a slice that was not drawn is ignored.
    EXPECT_NO_THROW(propagateSlices(image, l, 2, {1, 6}));
  }

  Geometry other = g;
  other.spacing = {1.0, 1.0, 2.0};
  expectBadRequest([&] { propagateSlices(image, Volume(other, 0.0f), 2, {1}); }, "differs");
  other = g;
  other.size = {16, 16, 11};
  expectBadRequest([&] { propagateSlices(image, Volume(other, 0.0f), 2, {1}); }, "16x16x11");
}

}  // namespace
}  // namespace tessera::interactive
