#pragma once
// Reading and writing medical images through ITK, kept behind a Torch- and ITK-free interface.

#include <cstdint>
#include <filesystem>

#include "tessera/image/Volume.h"

namespace tessera::image {

// Hard ceiling on any image; beyond it indices no longer fit int32 in downstream tools.
inline constexpr int64_t kMaxVoxels = int64_t{1} << 31;
// readImage's default limit: 2^29 voxels (512x512x2048, or 1024x1024x512), 2 GiB once decoded
// to float32. Raise or lower it with TESSERA_MAX_VOXELS (at most kMaxVoxels).
inline constexpr int64_t kDefaultMaxVoxels = int64_t{1} << 29;

struct ReadOptions {
  // Largest image accepted, in voxels; 0 means defaultMaxVoxels().
  int64_t maxVoxels = 0;
  // MetaImage (ElementDataFile) and NRRD (data file) headers may name data files outside their
  // own folder, by absolute path or "..". Off by default; TESSERA_ALLOW_EXTERNAL_DATA=1 turns it
  // on too. Data files must be regular files either way (never devices, FIFOs or directories).
  bool allowExternalData = false;
  // A 4D image (NIfTI: time series, several volumes) is refused unless a volume is chosen:
  // 0-based index along the 4th dimension. Ignored for 3D images (only 0 is accepted).
  int64_t volume = -1;
  // NaN voxels (resampled images often hold NaN outside the field of view) are refused unless
  // set; then each NaN reads as this value. Inf is refused either way.
  bool replaceNaN = false;
  float nanValue = 0.0f;
};

// TESSERA_MAX_VOXELS when set, else kDefaultMaxVoxels. Throws Error(Config) for a value that is
// not a whole number from 1 to kMaxVoxels.
int64_t defaultMaxVoxels();

// Reads a .nii/.nii.gz, .mha/.mhd, .nrrd/.nhdr file, or a directory holding exactly one DICOM
// series. Throws Error (message "PATH: problem", code BadImage) for a missing file, an
// unreadable, truncated or inconsistent file, a header whose declared size the file's bytes
// cannot hold (checked before any voxel memory is allocated), a data file outside the
// header's folder or not a regular file, a directory with zero or several series or with two
// slices at one position, 0 voxels and NaN/Inf voxels; Error(TooLarge) for more voxels than
// the limit. Peak memory is about one float32 copy of the image.
Volume readImage(const std::filesystem::path& path, const ReadOptions& options = {});

enum class PixelType { Float32, UInt8, Int16 };

// Writes a file whose format follows the extension (.nii, .nii.gz, .mha, .nrrd). The file
// appears atomically: it is written next to the target, flushed, then renamed over it.
void writeImage(const Volume& volume, const std::filesystem::path& path,
                PixelType pixelType = PixelType::Float32);

}  // namespace tessera::image
