#include "ProximalTerm.h"

#include <stdexcept>

namespace tessera::nn::detail {

ProximalTerm::ProximalTerm(const std::vector<torch::Tensor>& parameters, double mu) : mu_(mu) {
  if (!active()) return;
  reference_.reserve(parameters.size());
  for (const auto& p : parameters) reference_.push_back(p.detach().clone());
}

torch::Tensor ProximalTerm::operator()(const std::vector<torch::Tensor>& parameters) const {
  if (parameters.size() != reference_.size()) throw std::logic_error("ProximalTerm: parameter list changed during training");
  torch::Tensor sum = torch::zeros({}, parameters.empty() ? torch::TensorOptions() : parameters.front().options());
  for (size_t i = 0; i < parameters.size(); ++i) sum = sum + (parameters[i] - reference_[i]).pow(2).sum();
  return sum * (mu_ / 2);
}

}  // namespace tessera::nn::detail
