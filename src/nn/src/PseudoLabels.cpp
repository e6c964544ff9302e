#include "PseudoLabels.h"

namespace tessera::nn::detail {

PseudoLabels confidentPseudoLabels(const torch::Tensor& probabilities, double confidence, const torch::Tensor& valid) {
  torch::NoGradGuard noGrad;
  const auto [best, labels] = probabilities.max(1);
  PseudoLabels out;
  out.labels = labels;
  out.weights = (best >= confidence).to(torch::kFloat32);
  if (valid.defined()) out.weights = out.weights * valid.to(torch::kFloat32);
  out.kept = out.weights.sum().item<int64_t>();
  out.seen = valid.defined() ? valid.sum().item<int64_t>() : best.numel();
  return out;
}

torch::Tensor pseudoLabelLoss(const torch::Tensor& logits, const PseudoLabels& pseudo) {
  namespace F = torch::nn::functional;
  const auto crossEntropy = F::cross_entropy(logits, pseudo.labels, F::CrossEntropyFuncOptions().reduction(torch::kNone));
  torch::Tensor perClass = torch::zeros({}, logits.options());
  int classes = 0;
  for (int64_t c = 0; c < logits.size(1); ++c) {
    const auto w = pseudo.weights * (pseudo.labels == c).to(pseudo.weights.dtype());
    const double n = w.sum().item<double>();
    if (n <= 0) continue;
    perClass = perClass + (crossEntropy * w).sum() / n;
    ++classes;
  }
  if (classes == 0) return perClass;
  return perClass / classes * pseudo.weights.mean();
}

}  // namespace tessera::nn::detail
