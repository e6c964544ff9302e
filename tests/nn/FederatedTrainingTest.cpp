// The site- and server-side pieces of federated training in nn: FedProx's proximal term and
// batch-norm statistics re-estimated on a scanner's images (FedBN's scoring).
#include <gtest/gtest.h>

#include <cmath>

#include <torch/torch.h>

#include "Phantom.h"
#include "VolumeTensors.h"
#include "tessera/common/Error.h"
#include "tessera/nn/NormStatistics.h"
#include "tessera/nn/Training.h"

using namespace tessera;
using tessera::test::makePhantom;
using tessera::test::tinySpec;

namespace {

model::Model batchNormModel() {
  auto spec = tinySpec(2);
  spec.norm = model::Normalization::Batch;
  return model::initialModel(spec, model::Preprocessing{}, {}, 5);
}

bool isStatistic(const std::string& name) {
  return name.find("running_") != std::string::npos || name.find("num_batches_tracked") != std::string::npos;
}

// ‖a − b‖ over the learned tensors (batch-norm statistics follow the data, not the loss).
double distance(const common::WeightSet& a, const common::WeightSet& b) {
  double sum = 0;
  for (size_t t = 0; t < a.size(); ++t) {
    if (isStatistic(a[t].name)) continue;
    for (size_t k = 0; k < a[t].values.size(); ++k) sum += std::pow(double(a[t].values[k]) - b[t].values[k], 2);
  }
  return std::sqrt(sum);
}

const common::WeightTensor& tensorNamed(const common::WeightSet& w, const std::string& name) {
  for (const auto& t : w) {
    if (t.name == name) return t;
  }
  throw std::runtime_error("no tensor " + name);
}

TEST(FedProx, ALargeMuKeepsTheWeightsNearTheStart) {
  const std::vector<model::TrainingCase> cases{makePhantom(1), makePhantom(2)};
  const model::Model start = batchNormModel();
  auto trained = [&](double mu) {
    model::Model m = start;
    nn::TrainOptions options;
    options.epochs = 3;
    options.augment = false;
    options.proximalMu = mu;
    nn::trainModel(m, cases, options);
    return distance(m.weights, start.weights);
  };
  const double free = trained(0.0);
  const double held = trained(100.0);
  EXPECT_GT(free, 0.0);
  EXPECT_LT(held, 0.5 * free) << "mu 0: " << free << ", mu 100: " << held;
}

TEST(FedProx, ANegativeMuIsRefused) {
  model::Model m = batchNormModel();
  nn::TrainOptions options;
  options.epochs = 1;
  options.proximalMu = -1;
  EXPECT_THROW(nn::trainModel(m, {makePhantom(1)}, options), Error);
}

TEST(NormStatistics, RunningMeanIsTheFirstConvolutionsMeanOverTheImages) {
  model::Model m = batchNormModel();
  const model::Model before = m;
  // Intensities of another scanner: scaled and shifted, which the root statistics never saw.
  std::vector<image::Volume> images;
  for (uint64_t s : {3, 4}) {
    auto c = makePhantom(s);  // 48 × 48 × 16: sixteen unpadded slices, one pass each
    for (auto& v : c.image.voxels) v = 2.5f * v + 40.0f;
    images.push_back(c.image);
  }
  ASSERT_GT(nn::recomputeNormStatistics(m, images), 0);

  // Learned weights are untouched; only statistics move.
  for (size_t t = 0; t < m.weights.size(); ++t) {
    if (isStatistic(m.weights[t].name)) continue;
    EXPECT_EQ(m.weights[t].values, before.weights[t].values) << m.weights[t].name;
  }
  // The first batch-norm layer's mean, worked out with the first convolution directly.
  std::string meanName;
  for (const auto& t : m.weights) {
    if (t.name.size() > 17 && t.name.compare(t.name.size() - 17, 17, "norm.running_mean") == 0) {
      meanName = t.name;
      break;
    }
  }
  ASSERT_FALSE(meanName.empty());
  const std::string prefix = meanName.substr(0, meanName.size() - 17);
  const auto& w = tensorNamed(m.weights, prefix + "conv.weight");
  auto weight = torch::from_blob(const_cast<float*>(w.values.data()), w.shape, torch::kFloat32).clone();
  torch::Tensor bias;
  for (const auto& t : m.weights) {
    if (t.name == prefix + "conv.bias") bias = torch::from_blob(const_cast<float*>(t.values.data()), t.shape, torch::kFloat32).clone();
  }
  std::vector<torch::Tensor> slices;
  for (const auto& img : images) {
    slices.push_back(nn::detail::slicesAcross(nn::detail::toTensor(model::preprocessImage(img, m.preprocessing)), m.spec.axis));
  }
  const auto x = torch::cat(slices, 0).unsqueeze(1);
  const auto y = torch::conv2d(x, weight, bias, 1, 1);
  const auto expected = y.mean({0, 2, 3});
  const auto& actual = tensorNamed(m.weights, meanName);
  const auto& old = tensorNamed(before.weights, meanName);
  double moved = 0;
  for (int64_t c = 0; c < expected.size(0); ++c) {
    EXPECT_NEAR(actual.values[c], expected[c].item<double>(), 1e-3 + 1e-3 * std::abs(expected[c].item<double>())) << "channel " << c;
    moved = std::max(moved, std::abs(double(actual.values[c]) - old.values[c]));
  }
  EXPECT_GT(moved, 1e-3);
}

TEST(NormStatistics, InstanceNormNetworksKeepNoStatistics) {
  auto spec = tinySpec(2);
  spec.norm = model::Normalization::Instance;
  model::Model m = model::initialModel(spec, model::Preprocessing{}, {}, 5);
  const auto before = m.weights;
  EXPECT_EQ(nn::recomputeNormStatistics(m, {makePhantom(3).image}), 0);
  EXPECT_EQ(distance(m.weights, before), 0.0);
}

}  // namespace
