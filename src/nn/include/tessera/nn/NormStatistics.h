#pragma once
// Batch-norm statistics re-estimated on a set of images. Under FedBN the global model holds the
// root's (or an average of nobody's) running statistics; what a site deploys is the global
// weights with statistics of its own images. The server scores FedBN candidates the same way:
// statistics from the validation images first, then Dice, so the score describes a model that
// could actually run on that scanner.

#include <vector>

#include "tessera/image/Volume.h"
#include "tessera/model/Model.h"

namespace tessera::nn {

// Replaces every batch-norm layer's running mean and variance with their average over the
// images (preprocessed as for inference; every slice for a 2D network), leaving all learned
// weights unchanged. Returns the number of layers re-estimated (0 for instance-norm or no-norm
// networks, which keep no statistics; the model is then unchanged).
int recomputeNormStatistics(model::Model& model, const std::vector<image::Volume>& images);

}  // namespace tessera::nn
