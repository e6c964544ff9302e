#include "PartialLabelLoss.h"

namespace tessera::nn::detail {

torch::Tensor annotatedMask(const std::vector<int>& labels, int64_t classes) {
  if (labels.empty()) return torch::ones({classes});
  auto mask = torch::zeros({classes});
  mask[0] = 1.0;
  for (int l : labels) mask[l] = 1.0;
  return mask;
}

torch::Tensor partialLabelLoss(const torch::Tensor& logits, const torch::Tensor& target, const torch::Tensor& weights,
                               const torch::Tensor& annotated) {
  const auto classes = logits.size(1);
  std::vector<int64_t> maskShape{annotated.size(0), classes};
  for (int64_t d = 2; d < logits.dim(); ++d) maskShape.push_back(1);
  const auto kept = annotated.to(logits.dtype()).view(maskShape);  // [N, C, 1...]
  const auto probs = torch::softmax(logits, 1);
  // Background absorbs every class the sample's annotators did not draw.
  const auto unannotated = (probs * (1 - kept)).sum(1, true);
  const auto merged = torch::cat({probs.slice(1, 0, 1) + unannotated, probs.slice(1, 1) * kept.slice(1, 1)}, 1);
  const auto logMerged = torch::log(merged.clamp_min(1e-8));
  auto crossEntropy = -logMerged.gather(1, target.unsqueeze(1)).squeeze(1);
  if (weights.defined()) crossEntropy = crossEntropy * weights;

  // Soft Dice per annotated foreground class; a class a sample does not annotate takes no part
  // in that sample's overlap, so it is neither rewarded nor penalised there.
  const auto onehot = torch::one_hot(target, classes).movedim(-1, 1).to(probs.dtype()) * kept;
  auto p = probs * kept;
  auto o = onehot;
  if (weights.defined()) {
    const auto w = weights.unsqueeze(1);
    p = p * w;
    o = o * w;
  }
  std::vector<int64_t> reduce{0};
  for (int64_t d = 2; d < logits.dim(); ++d) reduce.push_back(d);
  const auto dice = (2 * (p * onehot).sum(reduce) + 1.0) / (p.sum(reduce) + o.sum(reduce) + 1.0);
  // Classes no sample of the batch annotates give dice 1 and a constant; averaging over the
  // annotated ones keeps the Dice term's scale independent of how many a site draws.
  const auto present = (annotated.sum(0) > 0).to(dice.dtype()).slice(0, 1);
  const auto diceLoss = ((1.0 - dice.slice(0, 1)) * present).sum() / present.sum().clamp_min(1.0);
  return crossEntropy.mean() + diceLoss;
}

}  // namespace tessera::nn::detail
