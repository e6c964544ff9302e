#pragma once
// FedAdam and FedYogi (Reddi et al. 2021, "Adaptive Federated Optimization", Algorithm 2): the
// server treats the round's mean delta (sample-weighted and staleness-scaled exactly as fedavg)
// as a pseudo-gradient Δ and takes one adaptive step with its own learning rate:
//   m ← β1·m + (1−β1)·Δ
//   v ← β2·v + (1−β2)·Δ²                       (Adam)
//   v ← v − (1−β2)·Δ²·sign(v − Δ²)             (Yogi: v changes at most additively)
//   x ← x + η·m / (√v + τ)
// with m₋₁ = 0 and v₋₁ = τ² (the paper's v₋₁ ≥ τ²) and no bias correction, as in the paper.
// On non-IID sites the per-coordinate step lets rarely-moved weights (a structure only one site
// sees) move as fast as common ones. Batch-norm running statistics (isRunningStatistic,
// GaussianMechanism.h) are not gradients: they are averaged as fedavg does and carry no moments.
//
// The moments belong to the generation they produced: the server stores them (see
// MomentStore in the server) named by that generation's weights SHA-256, written atomically
// before the generation is published, so a restart continues from exactly the same m and v.
// Moments file: TSWT records "m:<tensor>", "v:<tensor>" for each stepped tensor in the model's
// order, so one sequential pass reads (and writes) them next to the weights.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "tessera/common/WeightRecords.h"
#include "tessera/federation/Merge.h"

namespace tessera::federation {

bool usesServerOptimizer(Strategy strategy);

// Tensors a moments file for a model with weights at `current` holds (2 per stepped tensor).
uint32_t momentTensorCount(const common::WeightsLocation& current);

// The candidate through `out` and the new moments through `momentsOut` (neither committed).
// `moments`: those of the current generation; none (the first adaptive round, or the strategy
// was switched) starts from m = 0, v = τ². `scratch` holds the round's mean while it is read.
MergeOutput mergeWithServerOptimizer(const MergeInput& input, const std::optional<common::WeightsLocation>& moments,
                                     const std::filesystem::path& scratch, common::WeightRecordWriter& out,
                                     common::WeightRecordWriter& momentsOut);

}  // namespace tessera::federation
