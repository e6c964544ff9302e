#pragma once
// Checks of image files that ITK's readers do not make, and the error helpers they share with
// ImageIO.cpp. Private to tessera_image; no ITK here.

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "tessera/image/ImageIO.h"
#include "tessera/image/Volume.h"

namespace tessera::image::detail {

namespace fs = std::filesystem;

// ReadOptions with the environment's defaults applied.
struct Limits {
  int64_t maxVoxels = kDefaultMaxVoxels;
  bool allowExternalData = false;
};
// Throws Error(Config) for a malformed TESSERA_MAX_VOXELS or TESSERA_ALLOW_EXTERNAL_DATA.
Limits resolveLimits(const ReadOptions& options);

// Throws Error "PATH: problem".
[[noreturn]] void fail(const fs::path& path, const std::string& problem);

// Throws "PATH: contains NaN|Inf at voxel (x,y,z)" for the voxel at linear index `index`.
[[noreturn]] void failNonFinite(const fs::path& path, bool nan, int64_t index,
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

// Throws BadImage "image has 0 voxels" or TooLarge "image is too large" (over `maxVoxels`) for
// these dimensions, without overflowing whatever a header announces.
void checkVoxelCount(const fs::path& path, const std::vector<uint64_t>& dims, int64_t maxVoxels);

// Throws "PATH: not a regular file (a FIFO)" and the like: devices and FIFOs would block or
// never end, directories hold no image. Symbolic links are followed.
void checkRegularFile(const fs::path& path);

// ---- NIfTI: our own parser and decoder --------------------------------------------------
// ITK's NIfTI reader fills missing voxel data with zeros, turns NaN into 0 silently, does not
// notice a cut-off gzip stream and keeps two copies of the data (the NIfTI library's buffer and
// ITK's). So Tessera parses the header itself and decodes the voxels straight into the Volume in
// one streaming pass; ITK supplies the geometry only (qform/sform handling).

struct NiftiLayout {
  std::array<int64_t, 8> dim{};
  int datatype = 0;
  int64_t bytesPerVoxel = 0;
  int64_t voxOffset = 0;
  bool swap = false;  // header (and data) in the other byte order
  int version = 1;    // NIfTI-1 or NIfTI-2; 0: Analyze 7.5 (.hdr/.img without NIfTI magic)
  bool pair = false;  // header in a .hdr file, voxels in the .img beside it (`dataPath`)
  fs::path dataPath;  // where the voxels are: the file itself, or the .img of a pair
  // The geometry as nibabel's get_best_affine takes it (sform, else qform, else the default
  // affine from pixdim with x flipped, centred; Analyze: SPM's origin field when set), in LPS.
  Geometry geometry;
  int64_t volumes = 1;               // along dim[4]
  bool replaceNaN = false;           // stored NaN reads as nanValue instead of failing
  float nanValue = 0.0f;
  double sclSlope = 1.0, sclInter = 0.0;  // as ITK applies them (see readNiftiHeader)

  // Size along x, y, z; 1 beyond dim[0] (the header may hold anything there).
  std::array<int64_t, 3> xyz() const {
    std::array<int64_t, 3> s{1, 1, 1};
    for (int64_t k = 1; k <= std::min<int64_t>(dim[0], 3); ++k) s[k - 1] = dim[k];
    return s;
  }
  int64_t voxelCount() const {  // bounded by the voxel limit once parsed
    int64_t n = 1;
    for (int64_t i = 1; i <= dim[0]; ++i) n *= dim[i];
    return n;
  }
};

// Parses and checks a single-file NIfTI header (.nii, or .nii.gz when `gzip`) without reading
// the voxel data: 0 or too many voxels, geometry fields ITK cannot digest, unsupported data
// types, and a declared data size the file cannot hold (the file size for .nii; deflate's
// maximum expansion of 1032:1 for .nii.gz). Throws Error.
// `pair`: `path` is a .hdr (NIfTI-1 "ni1" or Analyze 7.5) whose voxels are in the .img beside it.
NiftiLayout readNiftiHeader(const fs::path& path, bool gzip, int64_t maxVoxels, bool pair = false);

// Narrows a 4D layout to volume `volume` (0-based) along dim[4]; refuses a 4D image without a
// volume (-1), a volume out of range and 5D+ images. 3D images accept -1 and 0.
void selectNiftiVolume(const fs::path& path, NiftiLayout& layout, int64_t volume);

// Decodes all voxels to float into `out` (layout.voxelCount() values) in one pass over the
// (decompressed) stream, applying byte order and scl_slope/scl_inter as ITK does. Throws for
// truncated data, NaN/Inf stored voxels, a corrupt gzip stream (CRC, length) and a gzip stream
// that goes on far past the declared data.
void readNiftiVoxels(const fs::path& path, bool gzip, const NiftiLayout& layout, float* out);

// ---- MetaImage and NRRD: data files -----------------------------------------------------
// A header may keep its voxels in other files (MetaImage ElementDataFile: a name, LIST, or a
// printf pattern; NRRD data file: the same three forms). Each must exist, be a regular file and,
// unless external data is allowed, lie in the header's folder or below (after resolving
// symbolic links); absolute and "~" paths count as outside.

enum class DataEncoding { Raw, Zlib, Ascii, Hex, Unchecked };

struct DataFiles {
  std::vector<fs::path> files;  // detached data files in reading order; empty: data in the header file
  int64_t offset = 0;           // bytes to skip in each data file (or the header file); -1: data at the end
  DataEncoding encoding = DataEncoding::Raw;
};

// What MetaIO itself parsed from a MetaImage header.
struct MetaImageSpec {
  std::string elementDataFile;  // LOCAL, a file name, "LIST [dim]" or "pattern [min [max [step]]]"
  bool compressed = false;
  int64_t headerSize = 0;  // bytes to skip in a separate data file; -1: data at its end
};

// Checks every data file MetaIO will open for this header (before it opens any) and returns
// them; `dims` are the image dimensions from ITK. Also refuses what would crash or silently
// misread MetaIO: a file pattern with a step of 0 or a conversion other than one %d, a pattern
// or LIST naming fewer or more files than the image has slices.
DataFiles checkMetaImageFiles(const fs::path& path, const MetaImageSpec& spec, const std::vector<uint64_t>& dims,
                              bool allowExternal);

// Parses a NRRD header (.nrrd or detached .nhdr) the way teem does and checks its data files
// before ITK reads the header.
DataFiles checkNrrdFiles(const fs::path& path, bool allowExternal);

// Throws "file is truncated" unless the data holds at least `neededBytes` (`valueBytes` per
// value): raw files by their size, compressed ones by inflating and counting (time, not memory).
void checkDataBytes(const fs::path& path, const DataFiles& data, long double neededBytes, int valueBytes);

}  // namespace tessera::image::detail
