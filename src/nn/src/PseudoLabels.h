#pragma once
// FixMatch's confidence filter (Sohn et al. 2020) on a teacher's probabilities: a voxel becomes
// a training target only where the teacher is sure of it; everywhere else it takes no part in
// the loss, so an unsure teacher teaches nothing rather than its own mistakes.

#include <torch/torch.h>

namespace tessera::nn::detail {

struct PseudoLabels {
  torch::Tensor labels;   // [N, ...] int64: the teacher's most probable class
  torch::Tensor weights;  // [N, ...] float: 1 where its probability ≥ confidence (and `valid`), else 0
  int64_t kept = 0;       // voxels with weight 1
  int64_t seen = 0;       // voxels considered (valid ones)
};

// probabilities [N, C, ...] (softmax over dimension 1); valid [N, ...] float 0/1 or undefined
// (every voxel is image data, none padding).
PseudoLabels confidentPseudoLabels(const torch::Tensor& probabilities, double confidence,
                                   const torch::Tensor& valid = {});

// Cross-entropy of `logits` [N, C, ...] against the pseudo-labels: averaged within each class
// that has kept voxels, then over those classes, then scaled by the kept fraction of all voxels.
// A small network is often sure of the structure long before it is sure of the background around
// it; a plain mean over kept voxels then teaches "everything is foreground" (measured: Dice on
// the unlabelled scanner fell). The kept fraction keeps FixMatch's property that a teacher sure
// of few voxels contributes little.
torch::Tensor pseudoLabelLoss(const torch::Tensor& logits, const PseudoLabels& pseudo);

}  // namespace tessera::nn::detail
