#include <gtest/gtest.h>

#include "Phantom.h"
#include "tessera/image/Metrics.h"
#include "tessera/nn/Inference.h"
#include "tessera/common/Error.h"
#include "tessera/nn/Runtime.h"
#include "tessera/nn/Training.h"

using namespace tessera;
using tessera::test::makePhantom;
using tessera::test::tinySpec;

namespace {

model::Model tinyModel(int dims = 2) {
  model::Preprocessing prep;  // phantoms are made at the working resolution
  return model::initialModel(tinySpec(dims), prep, {}, 11);
}

}  // namespace

TEST(Training, TwoDimensionalUNetSegmentsUnseenPhantoms) {
  std::vector<model::TrainingCase> train;
  for (uint64_t s = 1; s <= 4; ++s) train.push_back(makePhantom(s));
  model::Model model = tinyModel();
  nn::TrainOptions options;
  options.epochs = 25;
  options.batchSize = 8;
  std::vector<double> losses;
  options.onEpoch = [&](const nn::TrainProgress& p) {
    losses.push_back(p.loss);
    EXPECT_EQ(p.epochs, 25);
    EXPECT_GE(p.secondsLeft, 0.0);
  };
  nn::trainModel(model, train, options);
  ASSERT_EQ(losses.size(), 25u);
  EXPECT_LT(losses.back(), losses.front() * 0.5);
  for (uint64_t s = 100; s < 103; ++s) {
    const auto test = makePhantom(s);
    const auto pred = nn::segment(model, test.image);
    EXPECT_GE(image::diceScore(pred, test.labels, 1), 0.95) << "phantom seed " << s;
  }
}

TEST(Training, ThreeDimensionalUNetLearnsPhantoms) {
  std::vector<model::TrainingCase> train;
  for (uint64_t s = 1; s <= 3; ++s) train.push_back(makePhantom(s, {32, 32, 16}, {1, 1, 2}));
  model::Model model = tinyModel(3);
  nn::TrainOptions options;
  options.epochs = 40;
  nn::trainModel(model, train, options);
  const auto test = makePhantom(200, {32, 32, 16}, {1, 1, 2});
  const auto pred = nn::segment(model, test.image);
  EXPECT_EQ(pred.geometry.size, test.image.geometry.size);
  EXPECT_GE(image::diceScore(pred, test.labels, 1), 0.85);
}

TEST(Training, SameSeedOnOneThreadGivesBitIdenticalWeights) {
  const int before = nn::threadCount();
  nn::setThreadCount(1);
  std::vector<model::TrainingCase> train{makePhantom(1), makePhantom(2)};
  nn::TrainOptions options;
  options.epochs = 2;
  options.seed = 42;
  model::Model a = tinyModel(), b = tinyModel(), c = tinyModel();
  nn::trainModel(a, train, options);
  nn::trainModel(b, train, options);
  options.seed = 43;
  nn::trainModel(c, train, options);
  nn::setThreadCount(before);
  EXPECT_EQ(common::encodeWeights(a.weights), common::encodeWeights(b.weights));
  EXPECT_NE(common::encodeWeights(a.weights), common::encodeWeights(c.weights));
}

TEST(Training, FineTuningStartsFromTheGivenWeights) {
  std::vector<model::TrainingCase> train{makePhantom(1)};
  model::Model model = tinyModel();
  const auto initial = model.weightsSha256();
  nn::TrainOptions options;
  options.epochs = 1;
  nn::trainModel(model, train, options);
  EXPECT_NE(model.weightsSha256(), initial);
  // One more short round from the trained weights moves them less than the first step from random.
  auto distance = [](const common::WeightSet& x, const common::WeightSet& y) {
    double d = 0;
    for (size_t i = 0; i < x.size(); ++i)
      for (size_t j = 0; j < x[i].values.size(); ++j) d += std::abs(x[i].values[j] - y[i].values[j]);
    return d;
  };
  model::Model tuned = model;
  options.learningRate = 1e-5;
  nn::trainModel(tuned, train, options);
  EXPECT_GT(distance(tuned.weights, model.weights), 0.0);
  EXPECT_LT(distance(tuned.weights, model.weights), distance(model.weights, tinyModel().weights));
}

TEST(Training, BadCasesAreNamed) {
  auto c = makePhantom(1);
  auto shifted = c;
  shifted.labels.geometry.origin[0] += 5;
  try {
    nn::validateTrainingCases({c, shifted}, tinySpec());
    FAIL();
  } catch (const tessera::Error& e) {
    EXPECT_NE(std::string(e.what()).find("training case 2: label map grid"), std::string::npos) << e.what();
  }
  auto badLabel = c;
  badLabel.labels.voxels[3] = 7;
  EXPECT_THROW(nn::validateTrainingCases({badLabel}, tinySpec()), tessera::Error);
  EXPECT_THROW(nn::validateTrainingCases({}, tinySpec()), tessera::Error);
}

TEST(Training, DefaultModelSlicesAcrossTheCoarsestAxis) {
  auto c = makePhantom(1, {40, 16, 40}, {1, 3, 1});
  c.labels.voxels[0] = 2;
  const auto model = nn::defaultModelFor({c}, {}, 1);
  EXPECT_EQ(model.spec.dims, 2);
  EXPECT_EQ(model.spec.axis, 1);
  EXPECT_EQ(model.spec.classes, 3);
  EXPECT_DOUBLE_EQ(model.preprocessing.targetSpacing[1], 0.0);
  EXPECT_EQ(model.task.labels.at(2), "label 2");
}

TEST(Training, ImageTooSmallForTheNetworkIsOneLineNotALibTorchTrace) {
  // A 2D U-Net of depth 3 halves slices twice and normalises what is left: it needs 2^3 = 8
  // voxels along each in-plane axis. A 1x1x1 image used to end in batch_norm's 20-line trace.
  auto dot = makePhantom(1, {1, 1, 1});
  try {
    nn::validateTrainingCases({makePhantom(2), dot}, tinySpec());
    FAIL();
  } catch (const tessera::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::BadImage);
    EXPECT_NE(std::string(e.what()).find("training case 2: image 1x1x1"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("needs at least 8 voxels along each in-plane axis"), std::string::npos) << e.what();
  }
  // What counts is the size at the network's spacing: 48 voxels of 0.1 mm are 4 at 1.2 mm.
  auto fine = makePhantom(3, {48, 48, 4}, {0.1, 0.1, 1});
  model::Preprocessing coarse;
  coarse.targetSpacing = {1.2, 1.2, 0};
  EXPECT_NO_THROW(nn::validateTrainingCases({fine}, tinySpec()));
  const Error refused = [&] {
    try {
      nn::validateTrainingCases({fine}, tinySpec(), coarse);
    } catch (const Error& e) {
      return e;
    }
    return Error(ErrorCode::Internal, "not refused");
  }();
  EXPECT_NE(std::string(refused.what()).find("at the network's spacing"), std::string::npos) << refused.what();
  // trainModel checks the same before any LibTorch work.
  model::Model model = tinyModel();
  EXPECT_THROW(nn::trainModel(model, {dot}, {}), tessera::Error);
  // 3D networks train on padded patches and take small images.
  EXPECT_NO_THROW(nn::validateTrainingCases({dot}, tinySpec(3)));
}
