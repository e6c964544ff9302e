#include "tessera/federation/AdaptiveClipping.h"

#include <cmath>
#include <string>

#include "tessera/common/Error.h"

namespace tessera::federation {

void AdaptiveClippingOptions::validate() const {
  if (!(targetQuantile >= 0 && targetQuantile <= 1))
    throw Error(ErrorCode::BadRequest, "adaptive clipping target_quantile=" + std::to_string(targetQuantile) +
                                           ": must be in [0, 1]");
  if (!(learningRate > 0) || !std::isfinite(learningRate))
    throw Error(ErrorCode::BadRequest, "adaptive clipping learning_rate=" + std::to_string(learningRate) +
                                           ": must be positive");
  if (!(countNoiseStd >= 0) || !std::isfinite(countNoiseStd))
    throw Error(ErrorCode::BadRequest, "adaptive clipping count_noise_std=" + std::to_string(countNoiseStd) +
                                           ": must be >= 0");
}

AdaptiveClipping::AdaptiveClipping(double initialClip, AdaptiveClippingOptions options)
    : clip_(initialClip), options_(options) {
  options_.validate();
  if (!(initialClip > 0) || !std::isfinite(initialClip))
    throw Error(ErrorCode::BadRequest, "adaptive clipping initial clip=" + std::to_string(initialClip) +
                                           ": must be positive");
}

double AdaptiveClipping::update(const std::vector<double>& norms, NoiseSource& noise) {
  if (norms.empty()) return clip_;
  double unclipped = 0;
  for (double n : norms) unclipped += n <= clip_ ? 1 : 0;
  if (options_.countNoiseStd > 0) unclipped += options_.countNoiseStd * noise.gaussian();
  const double fraction = unclipped / double(norms.size());
  clip_ *= std::exp(-options_.learningRate * (fraction - options_.targetQuantile));
  return clip_;
}

double AdaptiveClipping::deltaNoiseMultiplier(double z, double countNoiseStd) {
  if (countNoiseStd == 0) return z;  // the bits are not private: nothing to pay for them
  const double rest = 1 / (z * z) - 1 / (4 * countNoiseStd * countNoiseStd);
  if (!(rest > 0))
    throw Error(ErrorCode::BadRequest, "adaptive clipping: count noise " + std::to_string(countNoiseStd) +
                                           " too small for noise multiplier " + std::to_string(z) +
                                           " (needs count noise > z/2)");
  return 1 / std::sqrt(rest);
}

}  // namespace tessera::federation
