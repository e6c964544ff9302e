#pragma once
// Segmenting an image with a model.

#include "tessera/image/Volume.h"
#include <vector>

#include "tessera/model/CaseFolder.h"
#include "tessera/model/Model.h"

namespace tessera::nn {

struct InferenceOptions {
  int batchSize = 16;  // slices (2D) or patches (3D) per forward pass
  // Fold batch-norm into the convolutions before running; the result is the same up to rounding.
  bool foldBatchNorm = true;
};

// Class probabilities are computed at the model's spacing, resampled linearly to the input's
// grid and reduced by argmax: the label map has exactly the input's geometry.
image::Volume segment(const model::Model& model, const image::Volume& image,
                      const InferenceOptions& options = {});

// model::foregroundDice of the model's segmentations, averaged over the cases (the validation
// gate's score). Throws Error(BadRequest) for an empty set.
double meanDice(const model::Model& model, const std::vector<model::TrainingCase>& cases);

}  // namespace tessera::nn
