// White-box tests of the private network code (src/nn/src).
#include <gtest/gtest.h>

#include "InferenceNetwork.h"
#include "UNet.h"
#include "tessera/model/Model.h"
#include "tessera/model/WeightLayout.h"

using namespace tessera::nn;
namespace impl = tessera::nn::detail;

TEST(UNet, MatmulUpsamplingEqualsTransposedConvolution2D) {
  torch::manual_seed(1);
  torch::nn::ConvTranspose2d up(torch::nn::ConvTranspose2dOptions(6, 3, 2).stride(2));
  auto x = torch::randn({2, 6, 5, 7});
  auto expected = up->forward(x);
  auto actual = impl::upsampleByMatmul(x, up->weight, up->bias);
  ASSERT_EQ(actual.sizes(), expected.sizes());
  EXPECT_TRUE(torch::allclose(actual, expected, 1e-5, 1e-5));
}

TEST(UNet, MatmulUpsamplingEqualsTransposedConvolution3D) {
  torch::manual_seed(2);
  torch::nn::ConvTranspose3d up(torch::nn::ConvTranspose3dOptions(4, 2, 2).stride(2));
  auto x = torch::randn({1, 4, 3, 5, 2});
  auto expected = up->forward(x);
  auto actual = impl::upsampleByMatmul(x, up->weight, up->bias);
  ASSERT_EQ(actual.sizes(), expected.sizes());
  EXPECT_TRUE(torch::allclose(actual, expected, 1e-5, 1e-5));
}

TEST(UNet, OutputShapeAndGradientsReachEveryParameter) {
  NetworkSpec spec;
  spec.baseFeatures = 4;
  spec.depth = 3;
  spec.classes = 3;
  impl::UNet net(spec);
  auto x = torch::randn({2, 1, 16, 24});
  auto y = net->forward(x);
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 3, 16, 24}));
  y.sum().backward();
  for (const auto& p : net->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
  }
}

TEST(UNet, InferenceNetworkMatchesTheTrainingGraphInEvalMode) {
  NetworkSpec spec;
  spec.baseFeatures = 4;
  spec.depth = 3;
  torch::manual_seed(3);
  impl::UNet net(spec);
  // Give batch norm non-trivial statistics, as training would.
  net->train();
  {
    torch::NoGradGuard g;
    for (int i = 0; i < 5; ++i) net->forward(torch::randn({4, 1, 16, 16}) * 3 + 1);
  }
  const auto weights = impl::extractWeights(net);
  net->eval();
  auto x = torch::randn({3, 1, 16, 16});
  torch::Tensor expected;
  {
    torch::NoGradGuard g;
    expected = torch::softmax(net->forward(x), 1);
  }
  impl::InferenceNetwork fast(spec, weights);
  c10::InferenceMode guard;
  EXPECT_TRUE(torch::allclose(fast.probabilities(x), expected, 1e-4, 1e-5));
}

// model::weightLayout computes names and shapes without LibTorch; the module is the truth.
TEST(UNet, TorchFreeWeightLayoutMatchesTheModule) {
  for (int dims : {2, 3}) {
    for (auto norm : {tessera::model::Normalization::Batch, tessera::model::Normalization::Instance,
                      tessera::model::Normalization::None}) {
      for (int guidance : {0, 2}) {
        NetworkSpec spec;
        spec.dims = dims;
        spec.norm = norm;
        spec.guidanceChannels = guidance;
        spec.baseFeatures = 4;
        spec.depth = 3;
        spec.inChannels = 2;
        spec.classes = 3;
        const auto module = impl::moduleLayout(spec);
        const auto layout = tessera::model::weightLayout(spec);
        ASSERT_EQ(layout.size(), module.size()) << dims << "D " << toString(norm);
        for (size_t i = 0; i < layout.size(); ++i) {
          EXPECT_EQ(layout[i].name, module[i].first) << i;
          EXPECT_EQ(layout[i].shape, module[i].second) << layout[i].name;
        }
        // And the initial weights of the Torch-free initialiser load into the module.
        auto net = impl::buildNetwork(spec, tessera::model::initialModel(spec, {}, {}, 3).weights);
        EXPECT_EQ(impl::extractWeights(net).size(), layout.size());
        EXPECT_EQ(layout[0].shape[1], 2 + guidance);
      }
    }
  }
}
