#pragma once
// Random scanner-like changes of intensity for consistency training: gamma (contrast curve),
// a smooth multiplicative bias field and noise, per sample. Geometry never changes, so the
// network's outputs on two perturbations of one image can be compared voxel by voxel.

#include <torch/torch.h>

namespace tessera::nn::detail {

// x [N, 1, ...spatial], intensities as preprocessing leaves them (any range). Draws from
// LibTorch's generator (torch::manual_seed makes it repeatable).
torch::Tensor perturbIntensity(const torch::Tensor& x);

}  // namespace tessera::nn::detail
