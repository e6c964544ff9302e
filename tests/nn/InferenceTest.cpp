#include <gtest/gtest.h>

#include "Phantom.h"
#include "tessera/image/Metrics.h"
#include "tessera/nn/Inference.h"
#include "tessera/nn/Training.h"

using namespace tessera;

namespace {

const model::Model& trainedModel() {
  static const model::Model model = [] {
    model::Preprocessing prep;
    prep.targetSpacing = {2.0, 2.0, 0.0};  // the network works at half the phantoms' resolution
    model::Model m = model::initialModel(test::tinySpec(), prep, {}, 3);
    std::vector<model::TrainingCase> train;
    for (uint64_t s = 1; s <= 3; ++s) train.push_back(test::makePhantom(s, {64, 64, 12}));
    nn::TrainOptions options;
    options.epochs = 30;
    nn::trainModel(m, train, options);
    return m;
  }();
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
