#pragma once
// A 3D scalar image with its physical geometry. 2D images are volumes with size[2] == 1.
// Voxels are stored x-fastest: index = x + size[0] * (y + size[1] * z), as ITK and NIfTI do.

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "tessera/common/Error.h"

// Problems with outside image data throw tessera::Error(BadImage) whose message names the file and
// the problem on one line.
namespace tessera::image {

struct Geometry {
  std::array<int64_t, 3> size{0, 0, 0};
  std::array<double, 3> spacing{1.0, 1.0, 1.0};  // mm
  std::array<double, 3> origin{0.0, 0.0, 0.0};   // mm, centre of voxel (0,0,0), LPS as ITK
  // Row-major 3x3; column k is the physical direction of index axis k (ITK's convention).
  std::array<double, 9> direction{1, 0, 0, 0, 1, 0, 0, 0, 1};

  int64_t voxelCount() const { return size[0] * size[1] * size[2]; }
  double voxelVolumeMm3() const { return spacing[0] * spacing[1] * spacing[2]; }
  // Same size exactly, and spacing/origin/direction equal within a relative tolerance.
  bool sameGrid(const Geometry& other, double tolerance = 1e-4) const;
  // Physical point (mm) of a continuous index.
  std::array<double, 3> indexToPoint(const std::array<double, 3>& index) const;
  // Continuous index of a physical point (mm).
  std::array<double, 3> pointToIndex(const std::array<double, 3>& point) const;
  // "181x217x181 @ 1x1x1 mm" — for messages.
  std::string describe() const;
};

struct Volume {
  Geometry geometry;
  std::vector<float> voxels;
  std::string modality;  // DICOM Modality (0008,0060) when known, e.g. "MR", "CT"
  std::string bodyPart;  // DICOM BodyPartExamined (0018,0015) when known, e.g. "HEAD"
  int64_t volumes = 1;   // volumes along the 4th dimension of the file read (this is one of them)
  std::string source;    // how the file was read when not obvious, e.g. "DICOM series 1.2.3: 20 slices in DIR"

  Volume() = default;
  explicit Volume(const Geometry& g, float fill = 0.0f);

  int64_t index(int64_t x, int64_t y, int64_t z) const {
    return x + geometry.size[0] * (y + geometry.size[1] * z);
  }
  float& at(int64_t x, int64_t y, int64_t z) { return voxels[static_cast<size_t>(index(x, y, z))]; }
  float at(int64_t x, int64_t y, int64_t z) const { return voxels[static_cast<size_t>(index(x, y, z))]; }

  // Minimum and maximum voxel value; {0,0} for an empty volume.
  std::pair<float, float> valueRange() const;
};

// Stacks the given slices (indices along `axis`) into a new volume; the in-plane geometry is
// kept and the slice axis spacing becomes the step between the first two indices (or stays).
// Used to split one scan into disjoint training and test parts.
Volume extractSlices(const Volume& volume, int axis, const std::vector<int64_t>& indices);

}  // namespace tessera::image
