#include <gtest/gtest.h>

#include <cmath>

#include "Phantom.h"
#include "TrainedModelCache.h"
#include "tessera/common/Error.h"
#include "tessera/image/Metrics.h"
#include "tessera/nn/Inference.h"
#include "tessera/nn/Training.h"

using namespace tessera;

namespace {

const model::Model& trainedModel() {
  static const model::Model model = test::cachedTrainedModel("inference-phantoms", [] {
    model::Preprocessing prep;
    prep.targetSpacing = {2.0, 2.0, 0.0};  // the network works at half the phantoms' resolution
    model::Model m = model::initialModel(test::tinySpec(), prep, {}, 3);
    std::vector<model::TrainingCase> train;
    for (uint64_t s = 1; s <= 3; ++s) train.push_back(test::makePhantom(s, {64, 64, 12}));
    nn::TrainOptions options;
    options.epochs = 30;
    nn::trainModel(m, train, options);
    return m;
  });
  return model;
}

}  // namespace

TEST(Inference, OutputHasTheInputsExactGeometry) {
  auto c = test::makePhantom(9, {64, 64, 12});
  // An oblique, flipped acquisition with an odd origin.
  c.image.geometry.direction = {0, -1, 0, 1, 0, 0, 0, 0, 1};
  c.image.geometry.origin = {12.5, -33.25, 7.0};
  c.labels.geometry = c.image.geometry;
  const auto pred = nn::segment(trainedModel(), c.image);
  EXPECT_EQ(pred.geometry.size, c.image.geometry.size);
  EXPECT_EQ(pred.geometry.spacing, c.image.geometry.spacing);
  EXPECT_EQ(pred.geometry.origin, c.image.geometry.origin);
  EXPECT_EQ(pred.geometry.direction, c.image.geometry.direction);
  // A wrongly mapped grid (flipped or shifted) would score far lower.
  EXPECT_GE(image::diceScore(pred, c.labels, 1), 0.8);
}

TEST(Inference, FoldedBatchNormGivesTheSameSegmentation) {
  const auto c = test::makePhantom(10, {64, 64, 12});
  nn::InferenceOptions folded, plain;
  plain.foldBatchNorm = false;
  const auto a = nn::segment(trainedModel(), c.image, folded);
  const auto b = nn::segment(trainedModel(), c.image, plain);
  size_t differ = 0;
  for (size_t i = 0; i < a.voxels.size(); ++i) differ += a.voxels[i] != b.voxels[i];
  // Only voxels whose class probabilities tie within float rounding may flip.
  EXPECT_LE(differ, a.voxels.size() / 10000);
}

TEST(Inference, BatchSizeDoesNotChangeTheResult) {
  const auto c = test::makePhantom(11, {64, 64, 12});
  nn::InferenceOptions one, many;
  one.batchSize = 1;
  many.batchSize = 64;
  const auto a = nn::segment(trainedModel(), c.image, one);
  const auto b = nn::segment(trainedModel(), c.image, many);
  size_t differ = 0;
  for (size_t i = 0; i < a.voxels.size(); ++i) differ += a.voxels[i] != b.voxels[i];
  // Convolution kernels may pick another summation order per batch size: ties may flip.
  EXPECT_LE(differ, a.voxels.size() / 10000);
}

TEST(Inference, DetailedLabelsEqualSegmentAndEntropyIsBounded) {
  const auto c = test::makePhantom(12, {64, 64, 12});
  const auto plain = nn::segment(trainedModel(), c.image);
  const auto detailed = nn::segmentDetailed(trainedModel(), c.image, {});
  EXPECT_EQ(detailed.labels.voxels, plain.voxels);
  ASSERT_TRUE(detailed.entropy.geometry.sameGrid(c.image.geometry));
  const float maxEntropy = std::log(2.0f);
  double inside = 0, boundary = 0;
  size_t insideCount = 0, boundaryCount = 0;
  for (size_t i = 0; i < detailed.entropy.voxels.size(); ++i) {
    const float h = detailed.entropy.voxels[i];
    ASSERT_GE(h, 0.0f);
    ASSERT_LE(h, maxEntropy);
    // Uncertainty belongs at the structure's edge, where the prediction flips.
    const int64_t x = static_cast<int64_t>(i) % 64;
    const bool edge = x > 0 && x < 63 && plain.voxels[i] != plain.voxels[i - 1];
    (edge ? boundary : inside) += h;
    (edge ? boundaryCount : insideCount) += 1;
  }
  ASSERT_GT(boundaryCount, 0u);
  EXPECT_GT(boundary / static_cast<double>(boundaryCount), 2 * inside / static_cast<double>(insideCount));
}

TEST(Inference, SliceRangeEqualsTheFullRunOnThoseSlices) {
  // A model that keeps the slice axis (target spacing 0 along z) maps input slices 1:1.
  const auto c = test::makePhantom(13, {64, 64, 12});
  const auto full = nn::segmentDetailed(trainedModel(), c.image, {});
  nn::InferenceOptions range;
  range.firstSlice = 4;
  range.lastSlice = 7;
  const auto part = nn::segmentDetailed(trainedModel(), c.image, {}, range);
  ASSERT_TRUE(part.labels.geometry.sameGrid(c.image.geometry));
  size_t foreground = 0;
  for (int64_t z = 0; z < 12; ++z) {
    for (int64_t y = 0; y < 64; ++y) {
      for (int64_t x = 0; x < 64; ++x) {
        if (z >= 4 && z <= 7) {
          ASSERT_EQ(part.labels.at(x, y, z), full.labels.at(x, y, z)) << x << "," << y << "," << z;
          ASSERT_NEAR(part.entropy.at(x, y, z), full.entropy.at(x, y, z), 1e-4);
          foreground += part.labels.at(x, y, z) > 0;
        } else {
          ASSERT_EQ(part.labels.at(x, y, z), 0.0f);
          ASSERT_EQ(part.entropy.at(x, y, z), 0.0f);
        }
      }
    }
  }
  EXPECT_GT(foreground, 100u);  // the range holds part of the structure: a real comparison
  nn::InferenceOptions single;
  single.firstSlice = single.lastSlice = 11;
  const auto last = nn::segment(trainedModel(), c.image, single);
  for (int64_t y = 0; y < 64; ++y)
    for (int64_t x = 0; x < 64; ++x) ASSERT_EQ(last.at(x, y, 11), full.labels.at(x, y, 11));
}

TEST(Inference, BadSliceRangesAndClicksAreRefused) {
  const auto c = test::makePhantom(14, {64, 64, 12});
  auto expectRefusal = [&](const model::Model& m, const nn::Guidance& g, const nn::InferenceOptions& o,
                           const std::string& needle) {
    try {
      nn::segmentDetailed(m, c.image, g, o);
      FAIL() << "accepted; expected " << needle;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::BadRequest) << e.what();
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  nn::InferenceOptions outside;
  outside.firstSlice = 10;
  outside.lastSlice = 12;
  expectRefusal(trainedModel(), {}, outside, "not within 0..11");
  nn::InferenceOptions reversed;
  reversed.firstSlice = 5;
  reversed.lastSlice = 4;
  expectRefusal(trainedModel(), {}, reversed, "slice range");
  // Resampling along the slice axis breaks the 1:1 map of slices.
  model::Model resampled = trainedModel();
  resampled.preprocessing.targetSpacing = {2.0, 2.0, 2.0};
  nn::InferenceOptions some;
  some.firstSlice = some.lastSlice = 3;
  expectRefusal(resampled, {}, some, "one to one");
  const auto volumetric = model::initialModel(test::tinySpec(3), {}, {}, 1);
  expectRefusal(volumetric, {}, some, "one to one");
  nn::Guidance click;
  click.clicks.push_back({{30, 30, 5}, true});
  expectRefusal(trainedModel(), click, {},
                "model for task segmentation has no guidance channels: train it with --guidance to use clicks");
  auto guided = model::initialModel([] {
    auto s = test::tinySpec();
    s.guidanceChannels = 2;
    return s;
  }(), {}, {}, 1);
  nn::Guidance outsideClick;
  outsideClick.clicks.push_back({{30, 64, 5}, false});
  expectRefusal(guided, outsideClick, {}, "click (30,64,5) lies outside the image 64x64x12");
  EXPECT_NO_THROW(nn::segmentDetailed(guided, c.image, click));
}
