#pragma once
// The server's merge under central differential privacy (policy dp.mode = central): each delta
// of the round clipped to C, the clipped deltas averaged with EQUAL weights (a sample-weighted
// mean would let one site's share, and so the sensitivity, exceed C/m), N(0, (z·C/m)²) added
// once per coordinate, the result applied to the current weights. Normalisation tensors stay
// the current ones under FedBN; running statistics do too under noise (see GaussianMechanism.h),
// while with z = 0 (a pure norm bound) they take the coordinate-wise median of the sites' deltas.
// Holds the round's deltas in memory (m × parameters floats), unlike the streamed strategies.

#include "tessera/federation/GaussianMechanism.h"
#include "tessera/federation/Merge.h"

namespace tessera::federation {

struct CentralDpMergeOutput {
  MergeOutput merge;
  std::vector<double> normsBeforeClipping;  // one per update, for adaptive clipping and reports
};

CentralDpMergeOutput mergeWithCentralDp(const MergeInput& input, const DpParameters& dp, NoiseSource& noise,
                                        common::WeightRecordWriter& out);

}  // namespace tessera::federation
