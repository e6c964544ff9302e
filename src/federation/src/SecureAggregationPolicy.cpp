#include "tessera/federation/SecureAggregationPolicy.h"

#include <cmath>
#include <string>

#include "tessera/common/Error.h"

namespace tessera::federation {

bool runsUnderSecureAggregation(Strategy strategy) {
  switch (strategy) {
    case Strategy::FedAvg:
    case Strategy::FedBN:
    case Strategy::FedAdam:
    case Strategy::FedYogi:
      return true;
    case Strategy::Dafne:
    case Strategy::TrimmedMean:
    case Strategy::Median:
      return false;
  }
  return false;
}

void requireSecureAggregationCompatible(const MergePolicy& policy) {
  if (!runsUnderSecureAggregation(policy.strategy))
    throw Error(ErrorCode::BadRequest,
                "merge policy: strategy '" + toString(policy.strategy) +
                    "' needs single updates and cannot run under secure aggregation (use fedavg, fedbn, fedadam "
                    "or fedyogi)");
  if (policy.dp.mode == DpMode::Central && policy.dp.adaptiveQuantile > 0)
    throw Error(ErrorCode::BadRequest,
                "merge policy: dp.adaptive_quantile needs every update's norm and cannot run under secure "
                "aggregation (set it to 0)");
}

std::vector<float> privateMeanOfSecureSum(std::span<const uint32_t> sum, uint32_t count,
                                          const FixedPointCodec& codec, const DpParameters& dp, NoiseSource& noise) {
  dp.validate();
  std::vector<float> mean = codec.decodeMean(sum, count);
  const double roundingSlack = std::sqrt(static_cast<double>(sum.size())) / (2 * codec.scale());
  const double std = dp.noiseMultiplier * (dp.clipNorm + roundingSlack) / count;
  for (float& v : mean) v = static_cast<float>(v + std * noise.gaussian());
  return mean;
}

}  // namespace tessera::federation
