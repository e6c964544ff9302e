#pragma once
// The consistency term of semi-supervised training (Laine & Aila 2017; Mean Teacher): the
// network should segment an image the same way whatever the scanner's contrast, bias and noise,
// so its class probabilities on one perturbation of an image are pulled towards those on another
// (in training: the student's on one, the teacher's, a fixed target, on the other). Mean squared
// error between softmaxes rather than KL: bounded, and gentle where both are unsure.

#include <torch/torch.h>

namespace tessera::nn::detail {

// logitsA, logitsB [N, C, ...] for the same images; valid [N, ...] float 0/1 or undefined.
// Σ_c (softmax_a − softmax_b)² averaged over the valid voxels; 0 for identical inputs.
torch::Tensor consistencyLoss(const torch::Tensor& logitsA, const torch::Tensor& logitsB, const torch::Tensor& valid = {});

}  // namespace tessera::nn::detail
