#pragma once
// Fixed-point encoding of float updates into the ring Z_(2^32), where secure aggregation's masks
// cancel exactly (float sums would round differently in every order and could not unmask).
//
// A value x is clipped to [-R, R] and encoded as round(x·s) mod 2^32. Decoding reads a ring
// element as a signed 32-bit integer and divides by s. The scale is chosen so that a sum of up to
// `maxSites` encoded values can never wrap around:
//     s = floor((2^31 − 1 − maxSites) / (maxSites · R)),
// so |Σ round(x_i·s)| ≤ maxSites·(R·s + 1/2) < 2^31 for any m ≤ maxSites sites. The bound on the
// inputs: every coordinate |x| ≤ R. An update clipped to L2 norm C (DP clipping, or the site's
// own norm bound) satisfies this with R = C, since no coordinate exceeds the L2 norm; with R = C
// nothing is clipped twice. Resolution 1/s (R = 1, 50 sites: s ≈ 4.3e7, a step of 2.3e-8),
// far below float32's own rounding of typical weight deltas.

#include <cstdint>
#include <span>
#include <vector>

namespace tessera::federation {

class FixedPointCodec {
 public:
  // Throws Error(BadRequest) unless clipRange > 0 and finite, and 1 ≤ maxSites ≤ 1e6.
  FixedPointCodec(double clipRange, uint32_t maxSites);

  double clipRange() const { return clipRange_; }
  uint32_t maxSites() const { return maxSites_; }
  double scale() const { return scale_; }

  // Non-finite values are refused (Error NonFinite): a NaN has no place on the ring.
  std::vector<uint32_t> encode(std::span<const float> values) const;
  // A ring sum of `count` ≤ maxSites encodings, divided by `count` (count = 1: the sum itself).
  std::vector<float> decodeMean(std::span<const uint32_t> sum, uint32_t count) const;
  double decode(uint32_t element) const;

 private:
  double clipRange_;
  uint32_t maxSites_;
  double scale_;
};

// Exact sum in Z_(2^32) (unsigned wrap-around), the plain reference secure aggregation must match.
void addInto(std::vector<uint32_t>& accumulator, std::span<const uint32_t> values);

}  // namespace tessera::federation
