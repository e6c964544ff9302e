#include "InferenceNetwork.h"

namespace tessera::nn::detail {

InferenceNetwork::InferenceNetwork(const NetworkSpec& spec, const WeightSet& weights, bool foldBatchNorm)
    : net_(buildNetwork(spec, weights)), channelsLast_(spec.dims == 2) {
  net_->eval();
  if (foldBatchNorm) net_->foldBatchNorm();
  if (channelsLast_) {
    // oneDNN runs NHWC convolutions without reordering every activation to its blocked layout and
    // back; the weights are converted once here.
    torch::NoGradGuard noGrad;
    for (auto& p : net_->named_parameters()) {
      const bool convolution = p.key().find("conv.weight") != std::string::npos;
      if (convolution && p.value().dim() == 4) p.value().set_data(p.value().contiguous(torch::MemoryFormat::ChannelsLast));
    }
  }
}

torch::Tensor InferenceNetwork::probabilities(const torch::Tensor& x) {
  auto input = channelsLast_ ? x.contiguous(torch::MemoryFormat::ChannelsLast) : x;
  return torch::softmax(net_->forward(input), 1).contiguous();
}

}  // namespace tessera::nn::detail
