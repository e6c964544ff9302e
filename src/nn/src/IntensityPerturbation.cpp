#include "IntensityPerturbation.h"

#include <cmath>

namespace tessera::nn::detail {

torch::Tensor perturbIntensity(const torch::Tensor& x) {
  torch::NoGradGuard noGrad;
  const auto n = x.size(0);
  const int64_t spatial = x.dim() - 2;
  std::vector<int64_t> perSample(static_cast<size_t>(x.dim()), 1);
  perSample[0] = n;
  // Gamma acts on [0, 1]: map each sample's range there and back.
  const auto flat = x.reshape({n, -1});
  const auto low = std::get<0>(flat.min(1)).view(perSample);
  const auto high = std::get<0>(flat.max(1)).view(perSample);
  const auto range = (high - low).clamp_min(1e-6);
  const auto gamma = torch::exp((torch::rand(perSample) * 2 - 1) * std::log(1.5));  // 1/1.5 .. 1.5
  auto unit = ((x - low) / range).clamp(0, 1).pow(gamma);
  // Bias field, also on [0, 1] (a multiplicative field on signed intensities would invert
  // contrast): 1 + a linear ramp of up to ±15% across the image in a random direction.
  auto bias = torch::ones_like(unit);
  for (int64_t d = 0; d < spatial; ++d) {
    std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
    shape[static_cast<size_t>(2 + d)] = x.size(2 + d);
    const auto ramp = torch::linspace(-1, 1, x.size(2 + d)).view(shape);
    bias = bias + (torch::rand(perSample) * 2 - 1) * (0.15 / static_cast<double>(spatial)) * ramp;
  }
  const auto y = unit * bias * range + low;
  // Noise up to 5% of the sample's range.
  return y + torch::randn_like(y) * torch::rand(perSample) * 0.05 * range;
}

}  // namespace tessera::nn::detail
