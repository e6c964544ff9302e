#pragma once
// What a model expects its input to look like, and the transform that gets it there.

#include <array>

#include <nlohmann/json_fwd.hpp>

#include "tessera/image/Volume.h"

namespace tessera::model {

struct Preprocessing {
  // Spacing (mm) the network works at; 0 keeps an axis as acquired (the slice axis of 2D models).
  std::array<double, 3> targetSpacing{0.0, 0.0, 0.0};
  // Intensities are clipped to these percentiles, then z-scored (nnU-Net's CT/MR recipe).
  double clipLowPercentile = 0.5;
  double clipHighPercentile = 99.5;
};

nlohmann::json toJson(const Preprocessing& prep);
Preprocessing preprocessingFromJson(const nlohmann::json& json);

// The image resampled to the target spacing (linear) and normalised.
image::Volume preprocessImage(const image::Volume& image, const Preprocessing& prep);
// The label map resampled to the target spacing (nearest neighbour), values kept.
image::Volume preprocessLabels(const image::Volume& labels, const Preprocessing& prep);

}  // namespace tessera::model
