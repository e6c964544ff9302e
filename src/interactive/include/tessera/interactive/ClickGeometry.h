#pragma once
// Where a click lands. Clicks arrive as voxel indices (i, j, k in the order of the image file's
// voxels, as nibabel and ITK index them) or as patient coordinates in mm (LPS, as ITK and DICOM
// use); both go through the image's full direction matrix, so oblique and anisotropic volumes
// put the click on the voxel the person saw, not on the one an axis-aligned guess would pick.

#include <array>
#include <cstdint>
#include <string>

#include "tessera/image/Volume.h"

namespace tessera::interactive {

enum class ClickSpace { Voxel, PatientMm };

// The voxel containing `position` (rounded to the nearest voxel centre). Throws
// Error(BadRequest) naming the position, the space and the image size when it lies outside.
std::array<int64_t, 3> clickedVoxel(const image::Geometry& geometry, const std::array<double, 3>& position,
                                    ClickSpace space);

// "X,Y,Z" (three finite numbers, comma-separated) → position. Throws Error(BadRequest).
std::array<double, 3> parsePosition(const std::string& text);

}  // namespace tessera::interactive
