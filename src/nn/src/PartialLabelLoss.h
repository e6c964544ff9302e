#pragma once
// The marginal loss for partially annotated cases (Shi et al., "Marginal loss and exclusion loss
// for partially supervised multi-organ segmentation", 2021). A site that annotates only some
// structures leaves the others at 0 in its label maps: a voxel labelled 0 there means "background
// or one of the structures this site does not draw". So the probabilities of the unannotated
// classes are merged into background before the loss. The loss then depends on
// p(background) + p(unannotated) only and never prefers background over an unannotated structure.

#include <torch/torch.h>

namespace tessera::nn::detail {

// logits [N, C, ...], target [N, ...] int64, weights like target or undefined (1 everywhere),
// annotated [N, C] float: 1 where sample n's annotators drew class c (class 0 always 1).
// Cross-entropy on the merged probabilities plus soft Dice over the annotated foreground classes.
torch::Tensor partialLabelLoss(const torch::Tensor& logits, const torch::Tensor& target, const torch::Tensor& weights,
                               const torch::Tensor& annotated);

// [C] float mask for one case: all ones when `labels` is empty (a fully annotated case).
torch::Tensor annotatedMask(const std::vector<int>& labels, int64_t classes);

}  // namespace tessera::nn::detail
