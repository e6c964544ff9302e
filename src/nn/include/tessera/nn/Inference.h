#pragma once
// Segmenting an image with a model.

#include "tessera/image/Volume.h"
#include "tessera/nn/Model.h"

namespace tessera::nn {

struct InferenceOptions {
  int batchSize = 16;  // slices (2D) or patches (3D) per forward pass
  // Fold batch-norm into the convolutions before running; the result is the same up to rounding.
  bool foldBatchNorm = true;
};

// Class probabilities are computed at the model's spacing, resampled linearly to the input's
// grid and reduced by argmax: the label map has exactly the input's geometry.
image::Volume segment(const Model& model, const image::Volume& image,
                      const InferenceOptions& options = {});

}  // namespace tessera::nn
