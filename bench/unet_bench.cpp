// The C++ half of bench/compare_unet.py: times training steps and inference of the product's
// U-Net code (the same InferenceNetwork that `tessera predict` uses) and prints JSON.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <torch/torch.h>

#include "InferenceNetwork.h"
#include "UNet.h"
#include "tessera/model/Model.h"

using namespace tessera::nn;

int main(int argc, char** argv) {
  int threads = 1, batch = 16, h = 128, w = 128, base = 16, depth = 4, iters = 10, warmup = 2;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
    if (a == "--threads") threads = next();
    else if (a == "--batch") batch = next();
    else if (a == "--size") { h = next(); w = next(); }
    else if (a == "--base") base = next();
    else if (a == "--depth") depth = next();
    else if (a == "--iters") iters = next();
    else if (a == "--warmup") warmup = next();
    else {
      std::fprintf(stderr, "usage: %s [--threads N] [--batch B] [--size H W] [--base F] [--depth D] [--iters N] [--warmup N]\n", argv[0]);
      return 2;
    }
  }
  torch::set_num_threads(threads);
  NetworkSpec spec;
  spec.baseFeatures = base;
  spec.depth = depth;
  const auto weights = initialModel(spec, {}, {}, 1).weights;
  torch::manual_seed(1);
  auto x = torch::randn({batch, 1, h, w});
  auto y = (torch::rand({batch, h, w}) > 0.5).to(torch::kInt64);

  using Clock = std::chrono::steady_clock;
  auto net = tessera::nn::detail::buildNetwork(spec, weights);
  net->train();
  // As trainModel does for 2D networks.
  tessera::nn::detail::toChannelsLast(net);
  const auto xTrain = x.contiguous(torch::MemoryFormat::ChannelsLast);
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(1e-3));
  auto trainStep = [&] {
    opt.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(net->forward(xTrain), y);
    loss.backward();
    opt.step();
  };
  for (int i = 0; i < warmup; ++i) trainStep();
  auto t0 = Clock::now();
  for (int i = 0; i < iters; ++i) trainStep();
  const double trainS = std::chrono::duration<double>(Clock::now() - t0).count();

  tessera::nn::detail::InferenceNetwork inference(spec, weights);
  c10::InferenceMode guard;
  for (int i = 0; i < warmup; ++i) inference.probabilities(x);
  t0 = Clock::now();
  for (int i = 0; i < iters; ++i) inference.probabilities(x);
  const double inferS = std::chrono::duration<double>(Clock::now() - t0).count();
  const double n = static_cast<double>(batch) * iters;
  std::printf("{\"train_slices_per_s\": %.4f, \"infer_slices_per_s\": %.4f}\n", n / trainS, n / inferS);
  return 0;
}
