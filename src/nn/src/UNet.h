#pragma once
// The U-Net (Ronneberger et al.) in 2D or 3D, built from torch::nn modules. Private to the nn
// library: only its .cpp files include LibTorch.

#include <torch/torch.h>

#include "ModelTypes.h"

namespace tessera::nn::detail {

// convolution 3^d → normalisation → ReLU. After foldNorm() the batch-norm statistics live in
// the convolution and the norm step is skipped: the same function with fewer memory passes.
class ConvBlockImpl : public torch::nn::Module {
 public:
  ConvBlockImpl(int dims, int64_t in, int64_t out, Normalization norm);
  torch::Tensor forward(torch::Tensor x);
  void foldNorm();

 private:
  torch::nn::AnyModule conv_;
  torch::nn::AnyModule norm_;
  std::shared_ptr<torch::nn::Module> convModule_;
  std::shared_ptr<torch::nn::Module> normModule_;
  Normalization normKind_;
  bool folded_ = false;
};
TORCH_MODULE(ConvBlock);

class UNetImpl : public torch::nn::Module {
 public:
  explicit UNetImpl(const NetworkSpec& spec);
  // x: [N, C, H, W] (2D) or [N, C, D, H, W] (3D), sizes multiples of spec.sizeMultiple().
  // Returns logits [N, classes, ...].
  torch::Tensor forward(torch::Tensor x);
  // Folds batch-norm into the preceding convolutions; for inference only.
  void foldBatchNorm();
  const NetworkSpec& spec() const { return spec_; }

 private:
  NetworkSpec spec_;
  std::vector<torch::nn::Sequential> encoders_;
  std::vector<std::shared_ptr<torch::nn::Module>> ups_;
  std::vector<torch::nn::Sequential> decoders_;
  torch::nn::AnyModule head_;
};
TORCH_MODULE(UNet);

// A 2x2(x2), stride-2 transposed convolution computed as one matrix product (a 1x1 convolution)
// and a pixel shuffle. Same result as ConvTranspose2d/3d with these parameters; LibTorch 1.13's
// CPU kernel for it (slow_conv_transpose) goes through im2col and BLAS and took a third of U-Net
// inference time.
torch::Tensor upsampleByMatmul(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

// A network from `spec` with weights from `model` (names and shapes must match).
UNet buildNetwork(const NetworkSpec& spec, const WeightSet& weights);
// The network's parameters and buffers as a WeightSet, in state order.
WeightSet extractWeights(UNet& net);
void loadWeights(UNet& net, const WeightSet& weights);
// 2D networks train about 1.2x faster with channels-last weights and inputs (oneDNN's NHWC
// kernels, forward and backward; measured with bench/compare_unet.py). Before the optimizer is
// made, so that its state takes the same layout.
void toChannelsLast(UNet& net);
// Names and shapes of the LibTorch module's state, for checking model::weightLayout against it.
std::vector<std::pair<std::string, std::vector<int64_t>>> moduleLayout(const NetworkSpec& spec);

}  // namespace tessera::nn::detail
