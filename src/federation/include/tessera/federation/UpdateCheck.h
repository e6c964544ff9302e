#pragma once
// Everything the server verifies before it accepts (and stores) an update.

#include <string>

#include "tessera/federation/MergePolicy.h"
#include "tessera/federation/ModelUpdate.h"
#include "tessera/common/WeightRecords.h"

namespace tessera::federation {

struct UpdateCheckResult {
  UpdateFileInfo info;
  // Over learnable tensors only (batch-norm running statistics are averages and a counter).
  double deltaNorm = 0;  // ‖Δ‖ (for a full-weights upload: ‖uploaded − base‖)
  double baseNorm = 0;
};

// Streams the update file and its base generation's weights side by side; throws Error
// with the reason code (bad_update, task_mismatch, shape_mismatch, non_finite, norm_too_large).
UpdateCheckResult checkUpdateFile(const std::filesystem::path& updateFile, const std::string& expectedTask,
                                  const common::WeightsLocation& baseWeights, const MergePolicy& policy);

}  // namespace tessera::federation
