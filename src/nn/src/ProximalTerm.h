#pragma once
// FedProx's proximal term (Li et al. 2020, "Federated Optimization in Heterogeneous Networks"):
// (μ/2)·‖w − w_global‖² over the trainable parameters, where w_global are the weights the site's
// training started from (the generation it pulled). Added to the loss, it keeps a site with
// skewed data from drifting far from what the other sites agreed on.

#include <vector>

#include <torch/torch.h>

namespace tessera::nn::detail {

class ProximalTerm {
 public:
  // Copies the current values of `parameters` as the reference; μ = 0 makes it a no-op.
  ProximalTerm(const std::vector<torch::Tensor>& parameters, double mu);
  bool active() const { return mu_ > 0; }
  // (μ/2)·Σ‖p − p₀‖², differentiable in `parameters` (same order as at construction).
  torch::Tensor operator()(const std::vector<torch::Tensor>& parameters) const;

 private:
  double mu_;
  std::vector<torch::Tensor> reference_;
};

}  // namespace tessera::nn::detail
