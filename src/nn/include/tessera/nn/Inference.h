#pragma once
// Segmenting an image with a model.

#include <array>
#include <cstdint>
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
  // 2D batch-norm (or unnormalised) networks: with focusVoxel set (an input voxel, e.g. the last
  // click), each slice is computed only on a window of +-focusRadius network voxels around it
  // in-plane, plus a context margin that is computed and discarded, so the kept part matches a
  // whole-slice run (the U-Net's pooling grid is kept aligned; a margin of 16 left no voxel
  // different in tests). A click's Gaussian reaches 9 network voxels; the rest of the radius is
  // room for the correction to spread. Other models ignore the focus. Segmentation::computed
  // says what was computed.
  std::array<int64_t, 3> focusVoxel{-1, -1, -1};
  int focusRadius = 16;
  int focusMargin = 16;  // network voxels of context on each side of the kept window
};

// Labels and per-voxel uncertainty, both on the input's grid.
struct Segmentation {
  image::Volume labels;
  // Entropy of the class probabilities in nats (0: certain; log(classes): uniform).
  image::Volume entropy;
  // The input-grid box that was computed, inclusive: {x0, y0, z0, x1, y1, z1}. Voxels outside it
  // are 0 in both volumes (the whole image without slice range or focus).
  std::array<int64_t, 6> computed{0, 0, 0, -1, -1, -1};
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
