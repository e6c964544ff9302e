// A click's re-inference computed only near the click (nn::InferenceOptions' focus window): the
// kept part equals a whole-slice run, and a session's click changes nothing outside it.
#include <gtest/gtest.h>

#include <cstdio>

#include "Phantom.h"
#include "tessera/common/Error.h"
#include "tessera/model/Model.h"
#include "tessera/nn/Guidance.h"
#include "tessera/nn/Inference.h"

using namespace tessera;

namespace {

// An untrained 2D guidance network across axis 2 whose click channels are amplified, so clicks
// change its labels over a wide area (as the session tests' model; a focus window that cut the
// network's context too short would show as different labels).
model::Model clickSensitiveModel(double inPlaneSpacing) {
  auto spec = test::tinySpec(2);
  spec.guidanceChannels = 2;
  model::Preprocessing prep;
  prep.targetSpacing = {inPlaneSpacing, inPlaneSpacing, 0.0};
  auto m = model::initialModel(spec, prep, model::TaskInfo{}, 1);
  const int64_t inputs = spec.inChannels + spec.guidanceChannels;
  for (auto& tensor : m.weights) {
    if (tensor.shape.size() != 4 || tensor.shape[1] != inputs) continue;
    const int64_t perChannel = tensor.shape[2] * tensor.shape[3];
    for (int64_t out = 0; out < tensor.shape[0]; ++out)
      for (int64_t c = spec.inChannels; c < inputs; ++c)
        for (int64_t k = 0; k < perChannel; ++k) tensor.values[static_cast<size_t>((out * inputs + c) * perChannel + k)] *= 30.0f;
    break;
  }
  return m;
}

bool inside(const std::array<int64_t, 6>& box, int64_t x, int64_t y, int64_t z) {
  return x >= box[0] && y >= box[1] && z >= box[2] && x <= box[3] && y <= box[4] && z <= box[5];
}

struct Comparison {
  int64_t kept = 0;        // voxels in the computed box
  int64_t different = 0;   // of which labelled differently from the whole-image run
  int64_t changed = 0;     // of which the clicks changed (against the run without clicks)
  int64_t outsideSet = 0;  // voxels outside the box that are not 0
};

Comparison compareFocused(double inPlaneSpacing, int margin = 16) {
  const auto m = clickSensitiveModel(inPlaneSpacing);
  const auto c = test::makePhantom(5, {112, 96, 10}, {1.0, 1.0, 2.0});
  const std::array<int64_t, 3> focus{60, 40, 5};
  const nn::Guidance clicks{{{focus, true}, {{56, 48, 4}, false}, {{20, 20, 5}, true}}};
  nn::InferenceOptions options;
  options.firstSlice = 2;
  options.lastSlice = 8;
  options.focusVoxel = focus;
  options.focusRadius = 12;
  options.focusMargin = margin;
  const auto focused = nn::segmentDetailed(m, c.image, clicks, options);
  const auto full = nn::segmentDetailed(m, c.image, clicks);
  const auto automatic = nn::segmentDetailed(m, c.image, {});
  const auto& box = focused.computed;
  // The box holds the focus and the slice range, and is a real crop in-plane.
  EXPECT_EQ(box[2], 2);
  EXPECT_EQ(box[5], 8);
  for (int a = 0; a < 2; ++a) {
    EXPECT_LE(box[a], focus[a]);
    EXPECT_GE(box[3 + a], focus[a]);
    EXPECT_LT(box[3 + a] - box[a] + 1, c.image.geometry.size[a] * 3 / 4) << a;
  }
  EXPECT_EQ(full.computed, (std::array<int64_t, 6>{0, 0, 0, 111, 95, 9}));
  Comparison r;
  const auto& g = c.image.geometry;
  for (int64_t z = 0; z < g.size[2]; ++z)
    for (int64_t y = 0; y < g.size[1]; ++y)
      for (int64_t x = 0; x < g.size[0]; ++x) {
        const auto i = static_cast<size_t>(c.image.index(x, y, z));
        if (!inside(box, x, y, z)) {
          r.outsideSet += focused.labels.voxels[i] != 0.0f || focused.entropy.voxels[i] != 0.0f;
          continue;
        }
        ++r.kept;
        r.different += focused.labels.voxels[i] != full.labels.voxels[i];
        r.changed += full.labels.voxels[i] != automatic.labels.voxels[i];
      }
  std::printf("in-plane %.1f mm, margin %d: %ld voxels kept, %ld changed by the clicks, %ld differ from the whole run\n",
              inPlaneSpacing, margin, static_cast<long>(r.kept), static_cast<long>(r.changed), static_cast<long>(r.different));
  return r;
}

}  // namespace

// Bound: at most 0.5% of the kept voxels may differ from the whole-slice run (zero padding at the
// crop's edge reaches the kept part only through the deepest layers' receptive field).
TEST(FocusedInference, KeptBoxEqualsAWholeImageRunOnTheNetworksGrid) {
  const auto r = compareFocused(1.0);
  EXPECT_GT(r.changed, r.kept / 20);  // the clicks matter inside the box
  EXPECT_LE(r.different * 200, r.kept);
  EXPECT_EQ(r.outsideSet, 0);
  // Without the context margin the crop's edge shows in the kept part: the comparison can fail.
  EXPECT_GT(compareFocused(1.0, 0).different, 0);
}

TEST(FocusedInference, KeptBoxEqualsAWholeImageRunThroughResampling) {
  const auto r = compareFocused(1.5);
  EXPECT_GT(r.changed, r.kept / 20);
  EXPECT_LE(r.different * 200, r.kept);
  EXPECT_EQ(r.outsideSet, 0);
}

TEST(FocusedInference, FocusOutsideTheImageIsABadRequest) {
  const auto m = clickSensitiveModel(1.0);
  const auto c = test::makePhantom(5);
  nn::InferenceOptions options;
  options.focusVoxel = {48, 0, 0};
  try {
    nn::segmentDetailed(m, c.image, {}, options);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::BadRequest);
  }
}

TEST(FocusedInference, ClickReachIsWhereTheGuidanceMapEnds) {
  const auto m = clickSensitiveModel(1.0);
  const auto c = test::makePhantom(5);  // 2 mm slices, 1 mm in-plane: sigma 1.5 slices, reach 3 sigma
  EXPECT_DOUBLE_EQ(nn::clickReachSlices(m, c.image.geometry), 4.5);
  // A click's influence ends there: slices beyond the reach are the same as without the click.
  nn::InferenceOptions far;
  far.firstSlice = 13;
  far.lastSlice = 15;
  const auto with = nn::segmentDetailed(m, c.image, nn::Guidance{{{{24, 24, 8}, true}}}, far);
  const auto without = nn::segmentDetailed(m, c.image, {}, far);
  EXPECT_EQ(with.labels.voxels, without.labels.voxels);
  auto threeD = m;
  threeD.spec.dims = 3;
  EXPECT_THROW(nn::clickReachSlices(threeD, c.image.geometry), Error);
}
