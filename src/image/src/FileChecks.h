#pragma once
// Checks of image files that ITK's readers do not make, and the error helpers they share with
// ImageIO.cpp. Private to tessera_image; no ITK here.

#include <array>
#include <cstdint>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "tessera/image/Volume.h"

namespace tessera::image::detail {

// Throws Error "PATH: problem".
[[noreturn]] void fail(const std::filesystem::path& path, const std::string& problem);

// Throws "PATH: contains NaN|Inf at voxel (x,y,z)" for the voxel at linear index `index`.
[[noreturn]] void failNonFinite(const std::filesystem::path& path, bool nan, int64_t index,
                                const std::array<int64_t, 3>& size);

// Without leading and trailing white space and NULs (DICOM pads values with them).
std::string trim(const std::string& s);

// "256x256x120" for messages.
template <typename Dims>
std::string dimsText(const Dims& dims) {
  std::ostringstream s;
  for (size_t i = 0; i < dims.size(); ++i) s << (i ? "x" : "") << dims[i];
  return s.str();
}

// Throws "image has 0 voxels" or "image is too large" (over kMaxVoxels) for these
// dimensions, without overflowing whatever a header announces.
void checkVoxelCount(const std::filesystem::path& path, const std::vector<uint64_t>& dims);

// Validates a single-file NIfTI (.nii, or .nii.gz when `gzip`) before ITK reads it: header,
// 0 or too many voxels, geometry fields ITK cannot digest, complete voxel data, intact gzip
// stream, finite float voxels. Throws Error; returns the NIfTI version (1 or 2).
int checkNiftiFile(const std::filesystem::path& path, bool gzip);

// Validates that a MetaImage's uncompressed voxel data (inline or in its raw file) holds at
// least `neededBytes`; MetaIO itself only warns on stderr and returns a partly filled buffer.
void checkMetaImageData(const std::filesystem::path& path, long double neededBytes);

}  // namespace tessera::image::detail
