#pragma once
// Segmenting an image with a model.

#include <vector>

#include "tessera/image/Volume.h"
#include "tessera/nn/Guidance.h"

#include "tessera/model/CaseFolder.h"
#include "tessera/model/Model.h"

namespace tessera::nn {

struct InferenceOptions {
  int batchSize = 16;  // slices (2D) or patches (3D) per forward pass
  // Fold batch-norm into the convolutions before running; the result is the same up to rounding.
  bool foldBatchNorm = true;
  // 2D networks whose preprocessing keeps the slice axis (targetSpacing[axis] == 0): compute only
  // input slices firstSlice..lastSlice (inclusive, along spec.axis); -1 means all. A click
  // re-infers the few slices its Gaussian reaches instead of the whole volume.
  int64_t firstSlice = -1;
  int64_t lastSlice = -1;
};

// Labels and per-voxel uncertainty, both on the input's grid.
struct Segmentation {
  image::Volume labels;
  // Entropy of the class probabilities in nats (0: certain; log(classes): uniform).
  image::Volume entropy;
};

// Class probabilities are computed at the model's spacing, resampled linearly to the input's
// grid and reduced by argmax: the label map has exactly the input's geometry.
image::Volume segment(const model::Model& model, const image::Volume& image,
                      const InferenceOptions& options = {});

// model::foregroundDice of the model's segmentations, averaged over the cases (the validation
// gate's score). Throws Error(BadRequest) for an empty set.
// As segment(), with the person's clicks as guidance and the uncertainty the "where next"
// ranking needs. Clicks need a model with guidanceChannels > 0 (Error(BadRequest) otherwise,
// naming the model's task); a click outside the image is Error(BadRequest). With a slice range,
// voxels outside it are 0 in both volumes.
Segmentation segmentDetailed(const model::Model& model, const image::Volume& image, const Guidance& guidance,
                             const InferenceOptions& options = {});

double meanDice(const model::Model& model, const std::vector<model::TrainingCase>& cases);

}  // namespace tessera::nn
