#pragma once
// Reading and writing medical images through ITK, kept behind a Torch- and ITK-free interface.

#include <filesystem>

#include "tessera/image/Volume.h"

namespace tessera::image {

// Largest image we accept; beyond it indices no longer fit int32 in downstream tools.
inline constexpr int64_t kMaxVoxels = int64_t{1} << 31;

// Reads a .nii/.nii.gz, .mha/.mhd, .nrrd/.nhdr file, or a directory holding exactly one DICOM
// series. Throws Error (message "PATH: problem") for a missing file, an unreadable or
// truncated file, a directory with zero or several series, 0 or more than kMaxVoxels voxels,
// and NaN/Inf voxels.
Volume readImage(const std::filesystem::path& path);

enum class PixelType { Float32, UInt8, Int16 };

// Writes a file whose format follows the extension (.nii, .nii.gz, .mha, .nrrd). The file
// appears atomically: it is written next to the target, flushed, then renamed over it.
void writeImage(const Volume& volume, const std::filesystem::path& path,
                PixelType pixelType = PixelType::Float32);

}  // namespace tessera::image
