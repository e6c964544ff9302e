#pragma once
// Resampling between grids that share a physical space (same scan, other spacing).

#include "tessera/image/Volume.h"

namespace tessera::image {

enum class Interpolation { Linear, Nearest };

// The grid covering the same physical extent as `g` with new spacing; a spacing of 0 keeps
// that axis as it is. The origin (centre of the first voxel) is kept.
Geometry withSpacing(const Geometry& g, const std::array<double, 3>& spacing);

// Samples `source` at every voxel centre of `target`; points outside take the nearest edge value.
Volume resample(const Volume& source, const Geometry& target, Interpolation interpolation);

}  // namespace tessera::image
