// "Where next" on synthetic volumes: the residual and the entropy terms each move a slice to the
// top, drawn slices never come back, and the score stays in 0..1.
#include <gtest/gtest.h>

#include "tessera/common/Error.h"
#include "tessera/interactive/Suggestion.h"

using tessera::image::Geometry;
using tessera::image::Volume;
using namespace tessera::interactive;

namespace {

Volume blank(float fill = 0.0f) {
  Geometry g;
  g.size = {12, 10, 8};
  return Volume(g, fill);
}

// Sets `count` voxels of slice `slice` across `axis` to `value`.
void paintSlice(Volume& v, int axis, int64_t slice, int count, float value) {
  int painted = 0;
  const auto& s = v.geometry.size;
  for (int64_t z = 0; z < s[2]; ++z)
    for (int64_t y = 0; y < s[1]; ++y)
      for (int64_t x = 0; x < s[0]; ++x) {
        const int64_t c[3] = {x, y, z};
        if (c[axis] == slice && painted < count) {
          v.at(x, y, z) = value;
          ++painted;
        }
      }
}

}  // namespace

TEST(Suggestion, SliceWithTheLargestResidualComesFirst) {
  Volume previous = blank(), current = blank(), entropy = blank(0.1f);
  paintSlice(current, 2, 5, 40, 1.0f);
  paintSlice(current, 2, 2, 10, 1.0f);
  SuggestionOptions options;
  options.top = 3;
  const auto ranked = rankSlices(previous, current, entropy, {}, options);
  ASSERT_EQ(ranked.size(), 3u);
  EXPECT_EQ(ranked[0].axis, 2);
  EXPECT_EQ(ranked[0].slice, 5);
  EXPECT_EQ(ranked[1].slice, 2);
  EXPECT_DOUBLE_EQ(ranked[0].residualVoxels, 40.0);
  // Uniform entropy gives every slice the same 0.5; the residual adds 0.5 * 40/40 to slice 5.
  EXPECT_NEAR(ranked[0].score, 1.0, 1e-9);
  EXPECT_NEAR(ranked[1].score, 0.5 + 0.5 * 10.0 / 40.0, 1e-9);
  EXPECT_GT(ranked[1].score, ranked[2].score);
}

TEST(Suggestion, EntropyRanksWhenNothingChangedYet) {
  Volume mask = blank(), entropy = blank(0.05f);
  paintSlice(entropy, 2, 6, 120, 0.9f);
  const auto ranked = rankSlices(mask, mask, entropy, {});
  ASSERT_EQ(ranked.size(), 1u);
  EXPECT_EQ(ranked[0].slice, 6);
  EXPECT_NEAR(ranked[0].score, 0.5, 1e-9);  // residual term absent, entropy term at its maximum
}

TEST(Suggestion, DrawnSlicesAreNeverSuggested) {
  Volume previous = blank(), current = blank(), entropy = blank(0.1f);
  paintSlice(current, 2, 5, 40, 1.0f);
  paintSlice(current, 2, 3, 20, 1.0f);
  SuggestionOptions options;
  options.top = 100;
  const auto ranked = rankSlices(previous, current, entropy, {{2, 5}}, options);
  EXPECT_EQ(ranked.size(), 7u);  // 8 slices, one drawn
  EXPECT_EQ(ranked[0].slice, 3);
  for (const auto& s : ranked) {
    EXPECT_NE(s.slice, 5);
    EXPECT_GE(s.score, 0.0);
    EXPECT_LE(s.score, 1.0);
  }
}

TEST(Suggestion, RanksAcrossEveryRequestedAxis) {
  Volume previous = blank(), current = blank(), entropy;
  paintSlice(current, 0, 7, 80, 1.0f);  // a whole plane x = 7 changed
  SuggestionOptions options;
  options.axes = {0, 1, 2};
  const auto ranked = rankSlices(previous, current, entropy, {}, options);
  ASSERT_EQ(ranked.size(), 1u);
  EXPECT_EQ(ranked[0].axis, 0);
  EXPECT_EQ(ranked[0].slice, 7);
}

TEST(Suggestion, RefusesGridsOfDifferentSize) {
  Volume a = blank(), b;
  b.geometry.size = {3, 3, 3};
  b.voxels.assign(27, 0.0f);
  EXPECT_THROW(rankSlices(a, b, Volume(), {}), tessera::Error);
  SuggestionOptions options;
  options.axes = {3};
  EXPECT_THROW(rankSlices(a, a, Volume(), {}, options), tessera::Error);
}
