#pragma once
// Which merge policies can run under secure aggregation, and central DP on its unmasked sum.
//
// Under secure aggregation the server sees only Σ x_i of a round, so a strategy may use nothing but
// that sum (and the count of survivors, which is public):
//  - run: fedavg (Σ Δ_i / m, equal weights; a sample-weighted mean works when each site uploads
//    n_i·Δ_i and n_i, within the codec's range), fedbn (fedavg over the non-normalisation tensors),
//    fedadam / fedyogi (their pseudo-gradient is the mean delta), central DP without adaptive
//    clipping (sites clip to C themselves, the server adds noise once to the mean), local DP.
//  - refused: trimmed-mean and median (order statistics of single updates), dafne (merges each
//    upload on arrival, i.e. a single update), central DP with adaptive clipping (needs every
//    update's norm). Checks of single updates (norm ratio, non-finite values, the per-update
//    validation of their effect) cannot run on masked updates either: the codec's clipping range
//    bounds every coordinate instead, and the validation gate scores the aggregate candidate.

#include <cstdint>
#include <span>
#include <vector>

#include "tessera/federation/FixedPoint.h"
#include "tessera/federation/GaussianMechanism.h"
#include "tessera/federation/MergePolicy.h"

namespace tessera::federation {

bool runsUnderSecureAggregation(Strategy strategy);

// Throws Error(BadRequest) naming the strategy or setting that needs single updates.
void requireSecureAggregationCompatible(const MergePolicy& policy);

// Central DP over a secure sum of `count` updates, each clipped by its site to L2 norm C =
// dp.clipNorm before encoding with `codec` (whose range should be C). Fixed-point rounding can
// move each coordinate by 1/(2s), so one site's contribution to the decoded mean has L2 norm at
// most (C + √d/(2s))/m; the noise std is z times that (not z·C/m), keeping the guarantee exact.
// Returns the noised mean.
std::vector<float> privateMeanOfSecureSum(std::span<const uint32_t> sum, uint32_t count,
                                          const FixedPointCodec& codec, const DpParameters& dp, NoiseSource& noise);

}  // namespace tessera::federation
