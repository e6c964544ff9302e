#include "tessera/federation/FixedPoint.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "tessera/common/Error.h"

namespace tessera::federation {

using tessera::Error;
using tessera::ErrorCode;

FixedPointCodec::FixedPointCodec(double clipRange, uint32_t maxSites) : clipRange_(clipRange), maxSites_(maxSites) {
  if (!(std::isfinite(clipRange) && clipRange > 0))
    throw Error(ErrorCode::BadRequest, "fixed point: clip range " + std::to_string(clipRange) + " must be positive");
  if (maxSites < 1 || maxSites > 1000000)
    throw Error(ErrorCode::BadRequest, "fixed point: max sites " + std::to_string(maxSites) + " not in 1..1e6");
  const double headroom = 2147483647.0 - maxSites;
  scale_ = std::floor(headroom / (maxSites * clipRange));
  if (scale_ < 1)
    throw Error(ErrorCode::BadRequest, "fixed point: clip range " + std::to_string(clipRange) +
                                           " too large for " + std::to_string(maxSites) + " sites");
}

std::vector<uint32_t> FixedPointCodec::encode(std::span<const float> values) const {
  std::vector<uint32_t> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    const double x = values[i];
    if (!std::isfinite(x))
      throw Error(ErrorCode::NonFinite, "fixed point: value " + std::to_string(i) + " is not finite");
    const double clipped = std::clamp(x, -clipRange_, clipRange_);
    const auto q = static_cast<int64_t>(std::llround(clipped * scale_));
    out[i] = static_cast<uint32_t>(q);  // two's complement: the residue mod 2^32
  }
  return out;
}

double FixedPointCodec::decode(uint32_t element) const {
  return static_cast<double>(static_cast<int32_t>(element)) / scale_;
}

std::vector<float> FixedPointCodec::decodeMean(std::span<const uint32_t> sum, uint32_t count) const {
  if (count < 1 || count > maxSites_)
    throw Error(ErrorCode::BadRequest, "fixed point: sum of " + std::to_string(count) + " values, codec allows 1.." +
                                           std::to_string(maxSites_));
  std::vector<float> out(sum.size());
  for (size_t i = 0; i < sum.size(); ++i) out[i] = static_cast<float>(decode(sum[i]) / count);
  return out;
}

void addInto(std::vector<uint32_t>& accumulator, std::span<const uint32_t> values) {
  if (accumulator.empty()) accumulator.assign(values.size(), 0);
  if (accumulator.size() != values.size())
    throw Error(ErrorCode::ShapeMismatch, "fixed point: adding " + std::to_string(values.size()) + " values to " +
                                              std::to_string(accumulator.size()));
  for (size_t i = 0; i < values.size(); ++i) accumulator[i] += values[i];
}

}  // namespace tessera::federation
