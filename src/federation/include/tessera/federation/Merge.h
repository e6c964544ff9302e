#pragma once
// Merge strategies over streamed weights: every input is read from disk one tensor (or chunk) at
// a time, so peak memory stays near a few tensors whatever the number of updates.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tessera/federation/MergePolicy.h"
#include "tessera/federation/ModelUpdate.h"
#include "tessera/common/WeightRecords.h"

namespace tessera::federation {

struct UpdateInput {
  int64_t id = 0;
  common::WeightsLocation weights;
  UpdateKind kind = UpdateKind::Delta;
  int64_t baseGeneration = 0;
  double samples = 1;
};

struct MergeInput {
  common::WeightsLocation current;
  int64_t currentGeneration = 0;
  std::vector<UpdateInput> updates;  // in arrival order
  // Weights of an earlier generation (a stale update's base).
  std::function<common::WeightsLocation(int64_t generation)> generationWeights;
  MergePolicy policy;
};

struct MergeOutput {
  std::string weightsSha256;
  uint64_t weightsBytes = 0;
  int64_t parameters = 0;
  std::vector<double> contributions;  // effective weight of each update in the result
};

// Tensors holding normalisation-layer parameters and statistics (kept local by FedBN).
bool isNormalizationTensor(const std::string& name);

// Writes the candidate weights through `out` (not committed: the caller names the file).
MergeOutput mergeUpdates(const MergeInput& input, common::WeightRecordWriter& out);

// FedBN on the site: the global model with the site's own normalisation tensors.
void keepLocalNormalization(common::WeightSet& global, const common::WeightSet& local);

}  // namespace tessera::federation
