// Training with clicks, loss weights and label smoothing.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "ClickSimulation.h"
#include "Phantom.h"
#include "tessera/nn/Inference.h"
#include "tessera/nn/Runtime.h"
#include "tessera/nn/Training.h"

using namespace tessera;
using tessera::test::makePhantom;
using tessera::test::tinySpec;

namespace {

model::Model guidedModel(uint64_t seed = 5) {
  auto spec = tinySpec();
  spec.guidanceChannels = 2;
  return model::initialModel(spec, {}, {}, seed);
}

// A phantom whose label also holds a ball the image does not show (the "hard" part no network
// can find alone): only a click can say it is there.
struct HiddenBall {
  model::TrainingCase scan;
  std::array<int64_t, 3> centre{};
  double radiusMm = 6.0;
};

HiddenBall withHiddenBall(uint64_t seed) {
  HiddenBall h{makePhantom(seed), {}, 6.0};
  const auto& g = h.scan.labels.geometry;
  std::mt19937_64 rng(seed * 7919);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    std::array<int64_t, 3> c{static_cast<int64_t>(8 + rng() % 32), static_cast<int64_t>(8 + rng() % 32),
                             static_cast<int64_t>(4 + rng() % 8)};
    bool clear = true;  // well away from the visible structure
    for (int64_t z = 0; z < g.size[2] && clear; ++z)
      for (int64_t y = 0; y < g.size[1] && clear; ++y)
        for (int64_t x = 0; x < g.size[0] && clear; ++x) {
          const double d = std::hypot((x - c[0]) * g.spacing[0], (y - c[1]) * g.spacing[1], (z - c[2]) * g.spacing[2]);
          if (d <= h.radiusMm + 4.0 && h.scan.labels.at(x, y, z) > 0) clear = false;
        }
    if (!clear) continue;
    h.centre = c;
    for (int64_t z = 0; z < g.size[2]; ++z)
      for (int64_t y = 0; y < g.size[1]; ++y)
        for (int64_t x = 0; x < g.size[0]; ++x) {
          const double d = std::hypot((x - c[0]) * g.spacing[0], (y - c[1]) * g.spacing[1], (z - c[2]) * g.spacing[2]);
          if (d <= h.radiusMm) h.scan.labels.at(x, y, z) = 1.0f;
        }
    return h;
  }
  throw std::runtime_error("no room for a hidden ball");
}

// A trained guided model on an unseen hidden ball: nothing of it without a click, a good part of
// it near one positive click in its centre, and nothing changed beyond the click's reach.
void expectOneClickFindsAHiddenBall(const model::Model& model) {
  const auto test = withHiddenBall(101);
  const auto before = nn::segmentDetailed(model, test.scan.image, {});
  nn::Guidance click;
  click.clicks.push_back({test.centre, true});
  const auto after = nn::segmentDetailed(model, test.scan.image, click);
  // The click's slice and its neighbours, near the click.
  size_t truth = 0, foundBefore = 0, foundAfter = 0;
  for (int64_t z = test.centre[2] - 1; z <= test.centre[2] + 1; ++z)
    for (int64_t y = 0; y < 48; ++y)
      for (int64_t x = 0; x < 48; ++x) {
        if (std::hypot(x - test.centre[0], y - test.centre[1]) > 8.0) continue;
        truth += test.scan.labels.at(x, y, z) > 0;
        foundBefore += before.labels.at(x, y, z) > 0;
        foundAfter += after.labels.at(x, y, z) > 0;
      }
  ASSERT_GT(truth, 250u);
  EXPECT_LT(foundBefore, truth / 20) << "the ball is invisible without the click";
  std::printf("found %zu of %zu voxels near the click\n", foundAfter, truth);
  EXPECT_GT(foundAfter, truth / 4) << "before " << foundBefore << ", truth " << truth;
  // Beyond the click's reach (3 sigma) the segmentation stays as it was.
  size_t far = 0, changed = 0;
  for (int64_t z = 0; z < 16; ++z)
    for (int64_t y = 0; y < 48; ++y)
      for (int64_t x = 0; x < 48; ++x) {
        if (std::hypot(x - test.centre[0], y - test.centre[1], 2.0 * (z - test.centre[2])) <= 12.0) continue;
        ++far;
        changed += before.labels.at(x, y, z) != after.labels.at(x, y, z);
      }
  EXPECT_LT(changed, far / 100);
  EXPECT_EQ(nn::segment(model, test.scan.image).voxels, before.labels.voxels);
}

}  // namespace

TEST(ClickSimulation, ClicksLandDeepInsideTheErrorRegions) {
  std::mt19937_64 rng(1);
  auto labels = torch::zeros({2, 32, 32}, torch::kInt64);
  labels.index_put_({0, torch::indexing::Slice(4, 16), torch::indexing::Slice(6, 18)}, 1);  // missed entirely
  labels.index_put_({1, torch::indexing::Slice(10, 20), torch::indexing::Slice(10, 20)}, 1);
  auto prediction = labels.clone();
  prediction.index_put_({1, torch::indexing::Slice(22, 30), torch::indexing::Slice(2, 12)}, 1);  // a false positive
  prediction.index_put_({0}, 0);
  auto guidance = torch::zeros({2, 2, 32, 32});
  tessera::nn::detail::clickOnErrors(guidance, prediction, labels, 3, rng);
  // Sample 0: positive clicks centred in the missed square, no negative ones.
  const auto pos0 = guidance[0][0];
  EXPECT_FLOAT_EQ(pos0.max().item<float>(), 1.0f);
  const int64_t peak0 = pos0.argmax().item<int64_t>();
  EXPECT_GE(peak0 / 32, 4 + 3);
  EXPECT_LT(peak0 / 32, 16 - 3);
  EXPECT_GE(peak0 % 32, 6 + 3);
  EXPECT_LT(peak0 % 32, 18 - 3);
  EXPECT_EQ(guidance[0][1].sum().item<float>(), 0.0f);
  // Sample 1: nothing missed, one false positive region: negative clicks only, inside it.
  EXPECT_EQ(guidance[1][0].sum().item<float>(), 0.0f);
  const int64_t peak1 = guidance[1][1].argmax().item<int64_t>();
  EXPECT_GE(peak1 / 32, 22);
  EXPECT_LT(peak1 / 32, 30);
  EXPECT_GE(peak1 % 32, 2);
  EXPECT_LT(peak1 % 32, 12);
  EXPECT_FLOAT_EQ(guidance[1][1].max().item<float>(), 1.0f);
}

TEST(ClickSimulation, TheUsersProtocolClicksOnceInTheLargestError) {
  auto labels = torch::zeros({2, 32, 32}, torch::kInt64);
  labels.index_put_({0, torch::indexing::Slice(4, 20), torch::indexing::Slice(6, 22)}, 1);  // a large miss
  labels.index_put_({1, torch::indexing::Slice(2, 6), torch::indexing::Slice(2, 6)}, 1);    // a small miss
  auto prediction = torch::zeros({2, 32, 32}, torch::kInt64);
  prediction.index_put_({0, torch::indexing::Slice(26, 30), torch::indexing::Slice(26, 30)}, 1);  // a small false positive
  prediction.index_put_({1, torch::indexing::Slice(12, 30), torch::indexing::Slice(10, 28)}, 1);  // a large one
  prediction.index_put_({1, torch::indexing::Slice(2, 6), torch::indexing::Slice(2, 6)}, 1);
  prediction.index_put_({1, 2, 2}, 0);
  auto guidance = torch::zeros({2, 2, 32, 32});
  tessera::nn::detail::clickOnLargestError(guidance, prediction, labels);
  // Sample 0: one positive click, in the middle of the large miss; no negative one.
  EXPECT_EQ(guidance[1][0].sum().item<float>(), 0.0f);
  EXPECT_EQ(guidance[0][1].sum().item<float>(), 0.0f);
  const int64_t peak0 = guidance[0][0].argmax().item<int64_t>();
  EXPECT_GE(peak0 / 32, 4 + 4);
  EXPECT_LT(peak0 / 32, 20 - 4);
  EXPECT_GE(peak0 % 32, 6 + 4);
  EXPECT_LT(peak0 % 32, 22 - 4);
  // One Gaussian: its mass is that of a single click (about 2 pi sigma^2), not of several.
  const double single = 2.0 * M_PI * tessera::nn::kClickSigmaVoxels * tessera::nn::kClickSigmaVoxels;
  EXPECT_NEAR(guidance[0][0].sum().item<double>(), single, 0.1 * single);
  // Sample 1: one negative click inside the large false positive.
  const int64_t peak1 = guidance[1][1].argmax().item<int64_t>();
  EXPECT_GE(peak1 / 32, 12);
  EXPECT_LT(peak1 / 32, 30);
  EXPECT_GE(peak1 % 32, 10);
  EXPECT_LT(peak1 % 32, 28);
  EXPECT_NEAR(guidance[1][1].sum().item<double>(), single, 0.1 * single);
}

TEST(GuidanceTraining, APositiveClickFindsWhatTheImageDoesNotShow) {
  std::vector<model::TrainingCase> train;
  for (uint64_t s = 1; s <= 4; ++s) train.push_back(withHiddenBall(s).scan);
  model::Model model = guidedModel();
  nn::TrainOptions options;
  options.epochs = 20;
  // The ball is invisible, so only the clicks can say how far it reaches: with one click per
  // round the network learns that one click in the middle stands for the whole ball, which is
  // what this test gives it.
  options.clicks.maxClicksPerIteration = 1;
  options.clicks.clickIterations = 1;
  nn::trainModel(model, train, options);
  expectOneClickFindsAHiddenBall(model);
}

TEST(GuidanceTraining, APositiveClickFindsWhatTheImageDoesNotShowUnderTheUsersProtocol) {
  std::vector<model::TrainingCase> train;
  for (uint64_t s = 1; s <= 4; ++s) train.push_back(withHiddenBall(s).scan);
  model::Model model = guidedModel();
  nn::TrainOptions options;
  options.epochs = 20;
  // The simulated user's protocol: one click per round at the largest error, three rounds.
  options.clicks.oneClickAtLargestError = true;
  options.clicks.clickIterations = 3;
  nn::trainModel(model, train, options);
  expectOneClickFindsAHiddenBall(model);
}

TEST(GuidanceTraining, ZeroLossWeightsLeaveTheWeightsUnchanged) {
  auto c = makePhantom(3);
  c.weights = image::Volume(c.image.geometry, 0.0f);
  model::Model model = model::initialModel(tinySpec(), {}, {}, 11);
  const auto initial = model.weights;
  nn::TrainOptions options;
  options.epochs = 2;
  options.learningRate = 1e-2;
  nn::trainModel(model, {c}, options);
  ASSERT_EQ(model.weights.size(), initial.size());
  size_t compared = 0;
  for (size_t i = 0; i < initial.size(); ++i) {
    const auto& name = initial[i].name;
    if (name.find("running_") != std::string::npos || name.find("num_batches") != std::string::npos) continue;
    EXPECT_EQ(model.weights[i].values, initial[i].values) << name;
    ++compared;
  }
  EXPECT_GT(compared, 10u);
  // The same case with weight 1 in one half does train.
  for (size_t i = 0; i < c.weights.voxels.size() / 2; ++i) c.weights.voxels[i] = 1.0f;
  model::Model trained = model::initialModel(tinySpec(), {}, {}, 11);
  nn::trainModel(trained, {c}, options);
  EXPECT_NE(trained.weights[0].values, initial[0].values);
}

TEST(GuidanceTraining, LabelSmoothingChangesTheLoss) {
  const std::vector<model::TrainingCase> train{makePhantom(4)};
  auto firstLoss = [&](double smoothing) {
    model::Model m = model::initialModel(tinySpec(), {}, {}, 11);
    nn::TrainOptions options;
    options.epochs = 1;
    options.labelSmoothing = smoothing;
    double loss = 0;
    options.onEpoch = [&](const nn::TrainProgress& p) { loss = p.loss; };
    nn::trainModel(m, train, options);
    return loss;
  };
  const double plain = firstLoss(0.0), smoothed = firstLoss(0.2);
  EXPECT_EQ(plain, firstLoss(0.0));
  // Smoothed targets keep a floor under the cross-entropy: the loss is higher.
  EXPECT_GT(smoothed, plain + 1e-3);
  model::Model m = model::initialModel(tinySpec(), {}, {}, 11);
  nn::TrainOptions bad;
  bad.labelSmoothing = 1.0;
  EXPECT_THROW(nn::trainModel(m, train, bad), Error);
}

TEST(GuidanceTraining, SameSeedOnOneThreadGivesBitIdenticalWeights) {
  const int before = nn::threadCount();
  nn::setThreadCount(1);
  const std::vector<model::TrainingCase> train{withHiddenBall(1).scan};
  nn::TrainOptions options;
  options.epochs = 2;
  options.clicks.noClickProbability = 0.0;
  model::Model a = guidedModel(), b = guidedModel();
  nn::trainModel(a, train, options);
  nn::trainModel(b, train, options);
  nn::setThreadCount(before);
  EXPECT_EQ(a.weightsSha256(), b.weightsSha256());
}

TEST(GuidanceTraining, VolumetricNetworksTakeClicksAndWeightsToo) {
  auto c = makePhantom(6, {32, 32, 16}, {1, 1, 2});
  c.weights = image::Volume(c.image.geometry, 0.0f);
  auto spec = tinySpec(3);
  spec.guidanceChannels = 2;
  model::Model model = model::initialModel(spec, {}, {}, 2);
  const auto initial = model.weights;
  nn::TrainOptions options;
  options.epochs = 1;
  options.clicks.noClickProbability = 0.0;
  nn::trainModel(model, {c}, options);
  // Zero weights: patches with clicks still teach nothing.
  for (size_t i = 0; i < initial.size(); ++i) {
    if (initial[i].name.find("running_") != std::string::npos || initial[i].name.find("num_batches") != std::string::npos) continue;
    EXPECT_EQ(model.weights[i].values, initial[i].values) << initial[i].name;
  }
  c.weights = {};
  nn::trainModel(model, {c}, options);
  EXPECT_NE(model.weights[0].values, initial[0].values);
  nn::Guidance click;
  click.clicks.push_back({{16, 16, 8}, true});
  click.clicks.push_back({{2, 3, 1}, false});
  const auto out = nn::segmentDetailed(model, c.image, click);
  EXPECT_TRUE(out.labels.geometry.sameGrid(c.image.geometry));
  EXPECT_EQ(out.entropy.voxels.size(), c.image.voxels.size());
}
