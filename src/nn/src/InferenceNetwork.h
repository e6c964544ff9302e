#pragma once
// A U-Net prepared for fast inference: evaluation mode, batch-norm folded into convolutions,
// activations kept in the layout the CPU convolution kernels prefer. Shared by segment() and
// the benchmark, so the benchmark measures exactly the product's path.

#include <torch/torch.h>

#include "UNet.h"

namespace tessera::nn::detail {

class InferenceNetwork {
 public:
  InferenceNetwork(const NetworkSpec& spec, const WeightSet& weights, bool foldBatchNorm = true);
  // Class probabilities for a batch [N, C, ...spatial]; call under c10::InferenceMode.
  torch::Tensor probabilities(const torch::Tensor& x);

 private:
  UNet net_;
  bool channelsLast_;
};

}  // namespace tessera::nn::detail
