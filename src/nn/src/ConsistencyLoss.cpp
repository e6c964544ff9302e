#include "ConsistencyLoss.h"

namespace tessera::nn::detail {

torch::Tensor consistencyLoss(const torch::Tensor& logitsA, const torch::Tensor& logitsB, const torch::Tensor& valid) {
  const auto squared = (torch::softmax(logitsA, 1) - torch::softmax(logitsB, 1)).pow(2).sum(1);  // [N, ...]
  if (!valid.defined()) return squared.mean();
  const auto v = valid.to(squared.dtype());
  return (squared * v).sum() / v.sum().clamp_min(1.0);
}

}  // namespace tessera::nn::detail
