// Format checks that ITK's readers skip, in plain C++ and zlib (see FileChecks.h).

#include "FileChecks.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <type_traits>
#include <vector>

#include "tessera/image/ImageIO.h"

namespace tessera::image {

int64_t defaultMaxVoxels() {
  const char* text = std::getenv("TESSERA_MAX_VOXELS");
  if (!text || !*text) return kDefaultMaxVoxels;
  const std::string value = text;
  const bool digits = value.size() <= 18 && std::all_of(value.begin(), value.end(), [](unsigned char c) { return std::isdigit(c); });
  const long long n = digits ? std::atoll(value.c_str()) : 0;
  if (n < 1 || n > kMaxVoxels)
    throw Error(ErrorCode::Config, "TESSERA_MAX_VOXELS=" + value + ": expected a whole number of voxels from 1 to " +
                                       std::to_string(kMaxVoxels));
  return n;
}

}  // namespace tessera::image

namespace tessera::image::detail {

Limits resolveLimits(const ReadOptions& options) {
  Limits limits;
  limits.maxVoxels = options.maxVoxels > 0 ? std::min(options.maxVoxels, kMaxVoxels) : defaultMaxVoxels();
  limits.allowExternalData = options.allowExternalData;
  const char* text = std::getenv("TESSERA_ALLOW_EXTERNAL_DATA");
  const std::string value = text ? text : "";
  if (value == "1") {
    limits.allowExternalData = true;
  } else if (!value.empty() && value != "0") {
    throw Error(ErrorCode::Config, "TESSERA_ALLOW_EXTERNAL_DATA=" + value +
                                       ": expected 1 (image headers may name data files outside their folder) or 0");
  }
  return limits;
}

[[noreturn]] void fail(const fs::path& path, const std::string& problem) {
  throw Error(ErrorCode::BadImage, path.string() + ": " + problem);
}

std::string trim(const std::string& s) {
  const auto isSpace = [](unsigned char c) { return std::isspace(c) || c == '\0'; };
  size_t b = 0, e = s.size();
  while (b < e && isSpace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && isSpace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

[[noreturn]] void failNonFinite(const fs::path& path, bool nan, int64_t i, const std::array<int64_t, 3>& size) {
  const int64_t x = i % size[0], y = (i / size[0]) % size[1], z = i / (size[0] * size[1]);
  fail(path, std::string("contains ") + (nan ? "NaN" : "Inf") + " at voxel (" + std::to_string(x) + "," +
                 std::to_string(y) + "," + std::to_string(z) + ")" +
                 (nan ? "; if NaN marks the background (outside the field of view after resampling), pass "
                        "--nan-as VALUE (e.g. --nan-as 0) to read it as that value"
                      : ""));
}

void checkVoxelCount(const fs::path& path, const std::vector<uint64_t>& dims, int64_t maxVoxels) {
  const std::string text = dimsText(dims);
  if (std::find(dims.begin(), dims.end(), 0) != dims.end()) fail(path, "image has 0 voxels (dimensions " + text + ")");
  const auto limit = static_cast<uint64_t>(maxVoxels);
  uint64_t count = 1;
  long double declared = 1;  // for the message; may be astronomically large
  bool over = false;
  for (const uint64_t d : dims) {
    declared *= static_cast<long double>(d);
    // Saturate instead of overflowing: anything past the limit is rejected alike.
    over = over || d > limit / count;
    if (!over) count *= d;
  }
  if (over) {
    std::ostringstream voxels;
    voxels.precision(0);
    voxels << std::fixed << declared;
    throw Error(ErrorCode::TooLarge, path.string() + ": image is too large: dimensions " + text + " (" + voxels.str() +
                                         " voxels) exceed the limit of " + std::to_string(maxVoxels) +
                                         " voxels (TESSERA_MAX_VOXELS)");
  }
}

namespace {

std::string fileKind(fs::file_type type) {
  switch (type) {
    case fs::file_type::directory: return "a directory";
    case fs::file_type::fifo: return "a FIFO";
    case fs::file_type::block: return "a block device";
    case fs::file_type::character: return "a character device";
    case fs::file_type::socket: return "a socket";
    default: return "not a plain file";
  }
}

}  // namespace

void checkRegularFile(const fs::path& path) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (fs::is_regular_file(status)) return;
  if (!fs::exists(status)) fail(path, "no such file or directory");
  fail(path, "not a regular file (" + fileKind(status.type()) + ")");
}

namespace {

// ---- NIfTI ----------------------------------------------------------------------------------
// ITK's NIfTI reader hides three kinds of bad data: the NIfTI library fills missing voxel data
// with zeros (a warning on stderr only), it replaces NaN/Inf voxels by 0 without telling, and
// zlib reports a cut-off gzip stream only through gzerror(), which nobody asks. It also holds
// the data twice (the library's buffer and ITK's). So we parse the header ourselves and decode
// the voxels in one streaming pass straight into the Volume, checking completeness, finiteness
// and the gzip trailer (CRC, length) on the way; ITK only supplies the geometry.

template <typename T>
T readField(const unsigned char* p, bool swap) {
  unsigned char bytes[sizeof(T)];
  std::memcpy(bytes, p, sizeof(T));
  if (swap) std::reverse(bytes, bytes + sizeof(T));
  T value;
  std::memcpy(&value, bytes, sizeof(T));
  return value;
}

int64_t niftiBytesPerVoxel(int datatype) {
  switch (datatype) {
    case 2: case 256: return 1;                        // uint8, int8
    case 4: case 512: return 2;                        // int16, uint16
    case 8: case 16: case 768: case 2304: return 4;    // int32, float32, uint32, RGBA32
    case 128: return 3;                                // RGB24
    case 32: case 64: case 1024: case 1280: return 8;  // complex64, float64, int64, uint64
    case 1536: case 1792: return 16;                   // float128, complex128
    case 2048: return 32;                              // complex256
    default: return 0;
  }
}

// ITK turns pixdim, the quaternion and the sform rows into a direction matrix and checks it
// with an SVD (vnl/LINPACK) that calls abort() on non-finite entries and never returns on
// subnormal ones (found by fuzzing); absurd magnitudes overflow on the way there. Refuse such
// headers first: no scanner writes 1e-30 mm or 1e9 mm. A field is checked only when its form
// code says it is used.
void checkNiftiGeometryFields(const fs::path& path, const unsigned char* h, bool nifti2, bool swap, bool analyze) {
  const auto value = [&](size_t offset1, size_t offset2, int i) {
    return nifti2 ? readField<double>(h + offset2 + 8 * i, swap) : readField<float>(h + offset1 + 4 * i, swap);
  };
  const int qformCode = nifti2 ? readField<int32_t>(h + 344, swap) : readField<int16_t>(h + 252, swap);
  const int sformCode = nifti2 ? readField<int32_t>(h + 348, swap) : readField<int16_t>(h + 254, swap);
  constexpr double kLimit = 1e9;   // mm; a billion millimetres is no patient
  constexpr double kTiny = 1e-30;  // well above float's subnormal range (< 1.2e-38)
  const auto check = [&](double v, const char* name) {
    if (!std::isfinite(v) || std::abs(v) > kLimit || (v != 0.0 && std::abs(v) < kTiny))
      fail(path, std::string("invalid NIfTI header: ") + name + " = " + std::to_string(v));
  };
  for (int i = 0; i < 4; ++i) check(value(76, 104, i), "pixdim");  // qfac and the spatial spacings
  if (analyze) return;  // Analyze 7.5 has no qform/sform: those bytes hold other fields there
  if (qformCode > 0)
    for (int i = 0; i < 6; ++i) check(value(256, 352, i), "quatern/qoffset");  // b, c, d, x, y, z
  if (sformCode > 0)
    for (int i = 0; i < 12; ++i) check(value(280, 400, i), "srow");
}

// The header's affine (RAS, voxel index -> mm) as nibabel's get_best_affine takes it, turned
// into an ITK-style geometry in LPS. version 0 is Analyze 7.5 (SPM's origin field when set).
Geometry niftiGeometry(const unsigned char* h, int version, bool swap, const std::array<int64_t, 8>& dim) {
  const bool nifti2 = version == 2;
  const auto value = [&](size_t offset1, size_t offset2, int i) {
    return nifti2 ? readField<double>(h + offset2 + 8 * i, swap)
                  : static_cast<double>(readField<float>(h + offset1 + 4 * i, swap));
  };
  std::array<double, 4> pixdim{};
  for (int i = 0; i < 4; ++i) pixdim[i] = value(76, 104, i);
  std::array<int64_t, 3> size{1, 1, 1};
  for (int64_t k = 1; k <= std::min<int64_t>(dim[0], 3); ++k) size[k - 1] = dim[k];
  int qformCode = 0, sformCode = 0;
  if (version >= 1) {
    qformCode = nifti2 ? readField<int32_t>(h + 344, swap) : readField<int16_t>(h + 252, swap);
    sformCode = nifti2 ? readField<int32_t>(h + 348, swap) : readField<int16_t>(h + 254, swap);
  }
  double m[3][4] = {};
  if (sformCode > 0) {
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 4; ++c) m[r][c] = value(280, 400, r * 4 + c);
  } else if (qformCode > 0) {
    // nifti_quatern_to_mat44
    double b = value(256, 352, 0), c = value(256, 352, 1), d = value(256, 352, 2);
    double a = 1.0 - (b * b + c * c + d * d);
    if (a < 1e-7) {
      a = 1.0 / std::sqrt(b * b + c * c + d * d);
      b *= a, c *= a, d *= a, a = 0.0;
    } else {
      a = std::sqrt(a);
    }
    const double xd = pixdim[1] > 0 ? pixdim[1] : 1.0, yd = pixdim[2] > 0 ? pixdim[2] : 1.0;
    double zd = pixdim[3] > 0 ? pixdim[3] : 1.0;
    if (pixdim[0] < 0) zd = -zd;
    const double r[3][3] = {{a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)},
                            {2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)},
                            {2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b}};
    const double scale[3] = {xd, yd, zd};
    for (int i = 0; i < 3; ++i) {
      for (int k = 0; k < 3; ++k) m[i][k] = r[i][k] * scale[k];
      m[i][3] = value(256, 352, 3 + i);
    }
  } else {
    // nibabel's default (shape_zoom_affine with x flipped): the centre of the grid at 0 mm;
    // Analyze with SPM's 1-based origin field set: that voxel at 0 mm.
    std::array<double, 3> centre{};
    for (int k = 0; k < 3; ++k) centre[k] = (static_cast<double>(size[k]) - 1) / 2.0;
    if (version == 0) {
      std::array<int16_t, 3> o{};
      for (int k = 0; k < 3; ++k) o[k] = readField<int16_t>(h + 253 + 2 * k, swap);
      bool any = false, inside = true;
      for (int k = 0; k < 3; ++k) {
        any = any || o[k] != 0;
        inside = inside && o[k] > -size[k] && o[k] < 2 * size[k];
      }
      if (any && inside)
        for (int k = 0; k < 3; ++k) centre[k] = o[k] - 1.0;
    }
    for (int k = 0; k < 3; ++k) {
      const double zoom = (k == 0 ? -1.0 : 1.0) * pixdim[k + 1];
      m[k][k] = zoom;
      m[k][3] = -centre[k] * zoom;
    }
  }
  Geometry g;
  g.size = size;
  for (int k = 0; k < 3; ++k) {
    const double norm = std::sqrt(m[0][k] * m[0][k] + m[1][k] * m[1][k] + m[2][k] * m[2][k]);
    g.spacing[k] = norm > 0 ? norm : 1.0;
    for (int i = 0; i < 3; ++i) {
      const double ras = norm > 0 ? m[i][k] / norm : (i == k ? 1.0 : 0.0);
      g.direction[i * 3 + k] = (i < 2 ? -ras : ras) + 0.0;  // RAS -> LPS; no -0
    }
  }
  for (int i = 0; i < 3; ++i) g.origin[i] = (i < 2 ? -1.0 : 1.0) * m[i][3] + 0.0;
  return g;
}

// Parses a NIfTI-1 (348-byte) or NIfTI-2 (540-byte) single-file header, either byte order, or
// (`pair`) a .hdr: NIfTI-1 "ni1", NIfTI-2 "ni2" or Analyze 7.5 (348 bytes, no magic).
NiftiLayout parseNiftiHeader(const fs::path& path, const unsigned char* h, size_t n, int64_t maxVoxels, bool pair) {
  constexpr size_t kNifti1 = 348, kNifti2 = 540;
  NiftiLayout layout;
  double voxOffset = 0;
  size_t headerSize = 0;
  for (const bool swap : {false, true}) {
    const int32_t sizeofHdr = n >= 4 ? readField<int32_t>(h, swap) : 0;
    const char* magic1 = pair ? "ni1" : "n+1";
    const char* magic2 = pair ? "ni2" : "n+2";
    const bool analyze = pair && n >= kNifti1 && sizeofHdr == 348 && std::memcmp(h + 344, "ni1", 4) != 0;
    if (n >= kNifti1 && sizeofHdr == 348 && (std::memcmp(h + 344, magic1, 4) == 0 || analyze)) {
      for (int i = 0; i < 8; ++i) layout.dim[i] = readField<int16_t>(h + 40 + 2 * i, swap);
      layout.datatype = readField<int16_t>(h + 70, swap);
      voxOffset = readField<float>(h + 108, swap);
      headerSize = kNifti1;
      if (analyze) layout.version = 0;
    } else if (n >= kNifti2 && sizeofHdr == 540 && std::memcmp(h + 4, magic2, 4) == 0) {
      for (int i = 0; i < 8; ++i) layout.dim[i] = readField<int64_t>(h + 16 + 8 * i, swap);
      layout.datatype = readField<int16_t>(h + 12, swap);
      voxOffset = static_cast<double>(readField<int64_t>(h + 168, swap));
      headerSize = kNifti2;
    }
    if (headerSize) {
      layout.swap = swap;
      layout.version = headerSize == kNifti2 ? 2 : (layout.version == 0 && pair ? 0 : 1);
      const bool nifti2 = headerSize == kNifti2;
      layout.sclSlope = nifti2 ? readField<double>(h + 176, swap) : readField<float>(h + 112, swap);
      layout.sclInter = nifti2 ? readField<double>(h + 184, swap) : readField<float>(h + 116, swap);
      break;
    }
  }
  // As the NIfTI library and ITK take them: non-finite fields read as 0, a zero slope as 1.
  if (!std::isfinite(layout.sclSlope)) layout.sclSlope = 0.0;
  if (!std::isfinite(layout.sclInter)) layout.sclInter = 0.0;
  if (std::abs(layout.sclSlope) < std::numeric_limits<double>::epsilon()) layout.sclSlope = 1.0;
  if (!headerSize)
    fail(path, pair ? "not a NIfTI-1, NIfTI-2 or Analyze 7.5 header (no 348- or 540-byte header)"
                    : "not a NIfTI file (no single-file NIfTI-1 or NIfTI-2 header)");
  if (layout.version == 0) {  // Analyze: no scaling fields NIfTI would apply
    layout.sclSlope = 1.0;
    layout.sclInter = 0.0;
  }
  checkNiftiGeometryFields(path, h, headerSize == kNifti2, layout.swap, layout.version == 0);

  const int64_t rank = layout.dim[0];
  if (rank < 1 || rank > 7) fail(path, "invalid NIfTI header: dim[0] = " + std::to_string(rank));
  std::vector<uint64_t> dims;
  for (int64_t i = 1; i <= rank; ++i) {
    if (layout.dim[i] < 0)
      fail(path, "invalid NIfTI header: negative dimension (" +
                     dimsText(std::vector<int64_t>(layout.dim.begin() + 1, layout.dim.begin() + 1 + rank)) + ")");
    dims.push_back(static_cast<uint64_t>(layout.dim[i]));
  }
  checkVoxelCount(path, dims, maxVoxels);
  layout.bytesPerVoxel = niftiBytesPerVoxel(layout.datatype);
  if (layout.bytesPerVoxel == 0) fail(path, "unsupported NIfTI datatype " + std::to_string(layout.datatype));
  if (!std::isfinite(voxOffset) || voxOffset < 0 || voxOffset > 1e12)
    fail(path, "invalid NIfTI header: vox_offset = " + std::to_string(voxOffset));
  layout.voxOffset = pair ? static_cast<int64_t>(voxOffset)
                         : std::max<int64_t>(static_cast<int64_t>(voxOffset), static_cast<int64_t>(headerSize));
  layout.pair = pair;
  layout.geometry = niftiGeometry(h, layout.version, layout.swap, layout.dim);
  for (int64_t i = 4; i <= rank; ++i) layout.volumes *= layout.dim[i];
  return layout;
}

// Sequential reads from a plain file or a gzip stream. gzopen also reads an uncompressed
// file transparently, as the NIfTI library does for a .nii.gz name.
class ByteStream {
 public:
  ByteStream(const fs::path& path, bool gzip) : path_(path) {
    if (gzip) {
      gz_ = gzopen(path.c_str(), "rb");
      if (!gz_) fail(path, std::string("cannot open: ") + std::strerror(errno));
      gzbuffer(gz_, 1 << 17);
    } else {
      file_.open(path, std::ios::binary);
      if (!file_) fail(path, std::string("cannot open: ") + std::strerror(errno));
    }
  }
  ~ByteStream() {
    if (gz_) gzclose(gz_);
  }
  ByteStream(const ByteStream&) = delete;
  ByteStream& operator=(const ByteStream&) = delete;

  // Fills up to n bytes; fewer only at the end of the data.
  size_t read(unsigned char* dst, size_t n) {
    size_t total = 0;
    while (total < n) {
      const size_t want = std::min<size_t>(n - total, 1u << 30);
      int64_t got = 0;
      if (gz_) {
        got = gzread(gz_, dst + total, static_cast<unsigned>(want));
      } else {
        file_.read(reinterpret_cast<char*>(dst + total), static_cast<std::streamsize>(want));
        got = file_.gcount();
      }
      if (got <= 0) break;
      total += static_cast<size_t>(got);
    }
    return total;
  }

  // After reading to the end: a gzip stream that was cut off or fails its CRC is an error.
  void checkIntact() {
    if (!gz_) return;
    int errnum = Z_OK;
    const char* message = gzerror(gz_, &errnum);
    if (errnum == Z_OK) return;
    std::string reason = message ? message : "zlib error";
    // zlib prefixes the message with the file name, which the caller already prints.
    const std::string prefix = path_.string() + ": ";
    if (reason.compare(0, prefix.size(), prefix) == 0) reason.erase(0, prefix.size());
    fail(path_, "truncated or corrupt gzip data (" + reason + ")");
  }

 private:
  fs::path path_;
  gzFile gz_ = nullptr;
  std::ifstream file_;
};

// ITK's NiftiImageIO::MustRescale.
bool mustRescale(const NiftiLayout& layout) {
  constexpr double eps = std::numeric_limits<double>::epsilon();
  return std::abs(layout.sclSlope) > eps && (std::abs(layout.sclSlope - 1.0) > eps || std::abs(layout.sclInter) > eps);
}

// Decodes `count` stored values of type T at `p` into `out`, as ITK does: integers become float,
// scaling happens in double on top of that (double data keeps double until the end). Returns
// how many were decoded: fewer than `count` when a stored float is NaN or Inf.
template <typename T>
size_t decodeRun(const unsigned char* p, size_t count, const NiftiLayout& layout, bool rescale, float* out) {
  for (size_t i = 0; i < count; ++i, p += sizeof(T)) {
    const T raw = readField<T>(p, layout.swap);
    if constexpr (std::is_floating_point_v<T>) {
      if (std::isnan(raw) && layout.replaceNaN) {
        out[i] = layout.nanValue;
        continue;
      }
      if (!std::isfinite(raw)) return i;
    }
    if (rescale) {
      using Base = std::conditional_t<std::is_same_v<T, double>, double, float>;
      out[i] = static_cast<float>(static_cast<double>(static_cast<Base>(raw)) * layout.sclSlope + layout.sclInter);
    } else {
      out[i] = static_cast<float>(raw);
    }
  }
  return count;
}

using RunDecoder = size_t (*)(const unsigned char*, size_t, const NiftiLayout&, bool, float*);

RunDecoder decoderFor(int datatype) {
  switch (datatype) {
    case 2: return decodeRun<uint8_t>;
    case 256: return decodeRun<int8_t>;
    case 4: return decodeRun<int16_t>;
    case 512: return decodeRun<uint16_t>;
    case 8: return decodeRun<int32_t>;
    case 768: return decodeRun<uint32_t>;
    case 1024: return decodeRun<int64_t>;
    case 1280: return decodeRun<uint64_t>;
    case 16: return decodeRun<float>;
    case 64: return decodeRun<double>;
    default: return nullptr;  // complex, RGB, float128: refused by the size checks before
  }
}

bool storedNaN(const unsigned char* p, const NiftiLayout& layout) {
  return layout.datatype == 64 ? std::isnan(readField<double>(p, layout.swap)) : std::isnan(readField<float>(p, layout.swap));
}

}  // namespace

NiftiLayout readNiftiHeader(const fs::path& path, bool gzip, int64_t maxVoxels, bool pair) {
  NiftiLayout layout;
  {
    ByteStream in(path, gzip);
    unsigned char header[540];
    const size_t got = in.read(header, sizeof header);
    if (got < sizeof header) in.checkIntact();  // a gzip stream cut inside the header is truncation, not "no header"
    layout = parseNiftiHeader(path, header, got, maxVoxels, pair);
  }
  layout.dataPath = path;
  if (pair) {
    fs::path img = path;
    const std::string ext = path.extension().string();
    img.replace_extension(ext == ".HDR" ? ".IMG" : ".img");
    std::error_code missing;
    if (!fs::exists(img, missing))
      fail(path, "the voxel data file " + img.filename().string() + " is missing (a .hdr header needs its .img beside it)");
    checkRegularFile(img);
    layout.dataPath = img;
    gzip = false;
  }
  const int64_t needed = layout.voxelCount() * layout.bytesPerVoxel;
  std::error_code ec;
  const auto fileSize = static_cast<int64_t>(fs::file_size(layout.dataPath, ec));
  if (ec) fail(layout.dataPath, "cannot read: " + ec.message());
  if (!gzip && fileSize - layout.voxOffset < needed) {
    fail(layout.dataPath, "file is truncated: the header needs " + std::to_string(needed) + " bytes of voxel data from offset " +
                   std::to_string(layout.voxOffset) + ", but the file has " +
                   std::to_string(std::max<int64_t>(0, fileSize - layout.voxOffset)));
  }
  // Deflate cannot expand data more than 1032:1 (a 258-byte match costs at least 2 bits), so a
  // header declaring more than that is refused before anything is inflated. Below the bound the
  // stream is inflated and counted while decoding: time, never memory. A fixed ratio cap such as
  // 1000:1 would refuse blank label maps, which zlib compresses 1028:1.
  constexpr long double kMaxDeflateExpansion = 1032.0;
  if (gzip && static_cast<long double>(layout.voxOffset + needed) > kMaxDeflateExpansion * fileSize + 1024) {
    fail(path, "file is truncated: the header declares " + std::to_string(needed) + " bytes of voxel data, more than a " +
                   std::to_string(fileSize) + "-byte gzip file can hold (deflate expands at most 1032:1)");
  }
  return layout;
}

void selectNiftiVolume(const fs::path& path, NiftiLayout& layout, int64_t volume) {
  for (int64_t i = 5; i <= layout.dim[0]; ++i)
    if (layout.dim[i] > 1)
      fail(path, "image has " + std::to_string(layout.dim[0]) + " dimensions (" +
                     dimsText(std::vector<int64_t>(layout.dim.begin() + 1, layout.dim.begin() + 1 + layout.dim[0])) +
                     "); only 3D images and 4D series of 3D volumes are supported");
  const int64_t volumes = layout.dim[0] >= 4 ? layout.dim[4] : 1;
  if (volumes > 1 && volume < 0)
    fail(path, "image is 4D (" + dimsText(std::vector<int64_t>(layout.dim.begin() + 1, layout.dim.begin() + 5)) + ", " +
                   std::to_string(volumes) + " volumes); pass --volume N (0 to " + std::to_string(volumes - 1) +
                   ") to take one 3D volume");
  if (volume >= volumes)
    fail(path, "--volume " + std::to_string(volume) + " is out of range: the image has " + std::to_string(volumes) +
                   (volumes == 1 ? " volume (pass 0)" : " volumes (0 to " + std::to_string(volumes - 1) + ")"));
  const int64_t chosen = std::max<int64_t>(volume, 0);
  const int64_t perVolume = layout.xyz()[0] * layout.xyz()[1] * layout.xyz()[2];
  layout.voxOffset += chosen * perVolume * layout.bytesPerVoxel;
  layout.dim[0] = std::min<int64_t>(layout.dim[0], 3);
  for (int i = 4; i < 8; ++i) layout.dim[i] = 1;
}

void readNiftiVoxels(const fs::path& reportAs, bool gzip, const NiftiLayout& layout, float* out) {
  const fs::path& path = layout.dataPath.empty() ? reportAs : layout.dataPath;
  if (layout.pair) gzip = false;
  const RunDecoder decode = decoderFor(layout.datatype);
  if (!decode) fail(path, "unsupported NIfTI datatype " + std::to_string(layout.datatype));
  const bool rescale = mustRescale(layout);
  const auto size = static_cast<size_t>(layout.bytesPerVoxel);
  const int64_t needed = layout.voxelCount() * layout.bytesPerVoxel;
  const int64_t dataEnd = layout.voxOffset + needed;
  // A gzip stream is read to its end so that zlib checks the CRC and length trailer, but a
  // stream that goes on far past the declared data is refused rather than inflated for minutes.
  constexpr int64_t kMaxTrailingBytes = int64_t{16} << 20;

  ByteStream in(path, gzip);
  std::vector<unsigned char> buffer(1 << 20);
  unsigned char carry[8] = {};  // a value split across two reads
  size_t carried = 0;
  int64_t position = 0;  // stream offset of buffer[0]
  int64_t decoded = 0;   // values written to `out`
  int64_t available = 0;
  const auto failAt = [&](const unsigned char* value, int64_t index) {
    failNonFinite(path, storedNaN(value, layout), index, layout.xyz());
  };
  for (;;) {
    const size_t got = in.read(buffer.data(), buffer.size());
    if (got == 0) break;
    const int64_t begin = std::max<int64_t>(position, layout.voxOffset);
    const int64_t end = std::min<int64_t>(position + static_cast<int64_t>(got), dataEnd);
    if (end > begin) {
      const unsigned char* p = buffer.data() + (begin - position);
      auto n = static_cast<size_t>(end - begin);
      available += end - begin;
      if (carried > 0) {
        const size_t take = std::min(size - carried, n);
        std::memcpy(carry + carried, p, take);
        carried += take;
        p += take;
        n -= take;
        if (carried == size) {
          if (decode(carry, 1, layout, rescale, out + decoded) != 1) failAt(carry, decoded);
          ++decoded;
          carried = 0;
        }
      }
      const size_t whole = n / size;
      const size_t ok = decode(p, whole, layout, rescale, out + decoded);
      if (ok != whole) failAt(p + ok * size, decoded + static_cast<int64_t>(ok));
      decoded += static_cast<int64_t>(whole);
      p += whole * size;
      n -= whole * size;
      std::memcpy(carry, p, n);
      carried += n;
    }
    position += static_cast<int64_t>(got);
    if (!gzip && position >= dataEnd) break;  // bytes after the data are none of our business
    if (gzip && position > dataEnd + kMaxTrailingBytes)
      fail(path, "gzip data goes on more than " + std::to_string(kMaxTrailingBytes) +
                     " bytes past the voxel data the header declares (" + std::to_string(needed) + " bytes)");
  }
  in.checkIntact();
  if (available < needed)
    fail(path, "file is truncated: the header needs " + std::to_string(needed) + " bytes of voxel data from offset " +
                   std::to_string(layout.voxOffset) + ", but the file has " + std::to_string(available));
}

// ---- data files of MetaImage and NRRD headers ------------------------------------------------
// MetaIO and teem open whatever file a header names: /etc/passwd, ../../other-patient.raw, a
// FIFO that blocks forever, /dev/zero. They also trust file patterns blindly (a step of 0
// divides by zero, "%s%n" is handed to sprintf) and fill slices whose files are missing with
// garbage. Every data file is therefore resolved and checked here before the reader opens it.

namespace {

constexpr size_t kMaxDataFiles = 65536;
const char* const kExternalHint =
    " (data files must lie in the header's folder; TESSERA_ALLOW_EXTERNAL_DATA=1 allows others)";

fs::path folderOf(const fs::path& header) { return header.parent_path().empty() ? fs::path(".") : header.parent_path(); }

// std::getline without its appetite: a header "line" may be a gigabyte of binary data. Reads up
// to '\n' (dropped) or `limit` characters; false at the end of the input. `complete` tells
// whether the line ended with a newline (MetaIO ignores a last line without one).
constexpr size_t kMaxLine = 1 << 20;

bool readLine(std::istream& in, std::string& line, bool* complete = nullptr) {
  line.clear();
  bool newline = false;
  for (int c; line.size() < kMaxLine && (c = in.get()) != EOF;) {
    if (c == '\n') {
      newline = true;
      break;
    }
    line += static_cast<char>(c);
  }
  if (complete) *complete = newline;
  return newline || !line.empty();
}

// True when canonical `path` lies in canonical `folder` or below.
bool isInside(const fs::path& path, const fs::path& folder) {
  auto p = path.begin();
  for (auto f = folder.begin(); f != folder.end(); ++f, ++p) {
    if (f->empty()) continue;  // a trailing separator
    if (p == path.end() || *p != *f) return false;
  }
  return true;
}

// Resolves a data file name the way the readers do (relative to the header's folder) and checks
// it; `tildeIsAbsolute`: MetaIO takes "~..." as a full path.
fs::path checkDataFile(const fs::path& header, const std::string& name, bool tildeIsAbsolute, bool allowExternal) {
  const std::string quoted = "'" + name + "'";
  if (name.empty()) fail(header, "names an empty data file");
  if (std::any_of(name.begin(), name.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; }))
    fail(header, "data file name contains control characters");
  const bool absolute = name.front() == '/' || (tildeIsAbsolute && name.front() == '~');
  const fs::path folder = folderOf(header);
  const fs::path file = absolute ? fs::path(name) : folder / name;
  if (!allowExternal) {
    if (absolute) fail(header, "data file " + quoted + " is an absolute path" + kExternalHint);
    const fs::path lexical = fs::path(name).lexically_normal();
    if (!lexical.empty() && *lexical.begin() == "..")
      fail(header, "data file " + quoted + " lies outside the header's folder" + kExternalHint);
  }
  std::error_code ec;
  const fs::file_status status = fs::status(file, ec);
  if (!fs::exists(status)) fail(header, "data file " + quoted + " does not exist");
  if (!fs::is_regular_file(status))
    fail(header, "data file " + quoted + " is not a regular file (" + fileKind(status.type()) + ")");
  if (!allowExternal) {
    std::error_code ec1, ec2;
    const fs::path real = fs::canonical(file, ec1), root = fs::canonical(folder, ec2);
    if (ec1 || ec2 || !isInside(real, root))
      fail(header, "data file " + quoted + " resolves to " + real.string() + ", outside the header's folder" +
                       kExternalHint);
  }
  return file;
}

// Checks a printf pattern for file numbers: exactly one %d (flags 0 or -, width up to 3 digits)
// and otherwise only "%%". Anything else would reach sprintf in MetaIO or teem.
void checkNumberPattern(const fs::path& header, const std::string& format) {
  int conversions = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') continue;
    if (i + 1 < format.size() && format[i + 1] == '%') {
      ++i;
      continue;
    }
    size_t j = i + 1;
    while (j < format.size() && (format[j] == '0' || format[j] == '-')) ++j;
    const size_t digits = j;
    while (j < format.size() && std::isdigit(static_cast<unsigned char>(format[j]))) ++j;
    if (j - digits > 3 || j >= format.size() || format[j] != 'd')
      fail(header, "data file pattern '" + format + "' may hold only one %d (with an optional width)");
    ++conversions;
    i = j;
  }
  if (conversions != 1) fail(header, "data file pattern '" + format + "' must hold exactly one %d");
}

std::string formatNumber(const std::string& format, int64_t number) {
  char name[512];
  const int n = std::snprintf(name, sizeof name, format.c_str(), static_cast<int>(number));
  return n < 0 || n >= 250 ? std::string() : std::string(name, static_cast<size_t>(n));
}

std::vector<std::string> words(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// atoi of atof, as MetaIO reads its numbers; refuses what does not fit an int.
int metaNumber(const fs::path& header, const std::string& word) {
  const double v = std::atof(word.c_str());
  if (!(v > INT_MIN && v < INT_MAX)) fail(header, "ElementDataFile number " + word + " is out of range");
  return static_cast<int>(v);
}

// Where MetaIO's header parse ends (inline data and LIST lines start there) and its value for
// ElementDataFile, found the way MET_Read does: a field name runs to '=' or ':', the value
// follows the separators; ElementDataFile ends the header.
struct MetaHeaderText {
  int64_t dataStart = 0;
  bool found = false;
  std::string elementDataFile;
};

MetaHeaderText scanMetaHeader(const fs::path& path) {
  MetaHeaderText h;
  std::ifstream in(path, std::ios::binary);
  constexpr int64_t kMaxHeader = 1 << 20;
  for (std::string line; h.dataStart < kMaxHeader && readLine(in, line);) {
    h.dataStart += static_cast<int64_t>(line.size()) + 1;
    const size_t sep = line.find_first_of("=:");
    if (trim(line.substr(0, sep)) != "ElementDataFile") continue;
    // Without a separator on its line MetaIO would look for one on the next lines.
    if (sep == std::string::npos) fail(path, "MetaImage header: ElementDataFile without '=' on its line");
    h.found = true;
    h.elementDataFile = trim(line.substr(line.find_first_not_of("=: \t", sep) == std::string::npos
                                             ? line.size()
                                             : line.find_first_not_of("=: \t", sep)));
    break;
  }
  return h;
}

// Inflated size of the zlib/gzip stream starting at `offset`, counted up to `enough` bytes
// (what ITK will read); throws if the stream is cut off or corrupt before that.
int64_t inflatedSize(const fs::path& reportAs, const fs::path& file, int64_t offset, long double enough) {
  std::ifstream in(file, std::ios::binary);
  in.seekg(offset);
  z_stream z{};
  if (inflateInit2(&z, 15 + 32) != Z_OK) fail(reportAs, "zlib initialisation failed");  // 32: zlib or gzip
  std::vector<unsigned char> input(1 << 16), output(1 << 18);
  int64_t total = 0;
  int rc = Z_OK;
  while (rc != Z_STREAM_END && static_cast<long double>(total) < enough) {
    if (z.avail_in == 0) {
      in.read(reinterpret_cast<char*>(input.data()), static_cast<std::streamsize>(input.size()));
      z.next_in = input.data();
      z.avail_in = static_cast<unsigned>(in.gcount());
      if (z.avail_in == 0) break;  // input ended before the stream did
    }
    z.next_out = output.data();
    z.avail_out = static_cast<unsigned>(output.size());
    rc = inflate(&z, Z_NO_FLUSH);
    total += static_cast<int64_t>(output.size() - z.avail_out);
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) break;
  }
  inflateEnd(&z);
  if (rc != Z_STREAM_END && static_cast<long double>(total) < enough)
    fail(reportAs, "truncated or corrupt compressed voxel data");
  return total;
}

}  // namespace

DataFiles checkMetaImageFiles(const fs::path& path, const MetaImageSpec& spec, const std::vector<uint64_t>& dims,
                              bool allowExternal) {
  const std::string& value = spec.elementDataFile;
  const MetaHeaderText text = scanMetaHeader(path);
  if (!text.found || text.elementDataFile != trim(value))
    fail(path, "MetaImage header: cannot tell which data file MetaIO would read (ElementDataFile '" + value + "')");
  DataFiles data;
  data.encoding = spec.compressed ? DataEncoding::Zlib : DataEncoding::Raw;
  if (value == "LOCAL" || value == "Local" || value == "local") {
    data.offset = text.dataStart;
    return data;
  }
  data.offset = spec.headerSize;
  const int rank = static_cast<int>(dims.size());
  if (rank < 1) fail(path, "MetaImage header without dimensions");
  if (value.compare(0, 4, "LIST") == 0) {
    // "LIST [fileDim]": the header's remaining lines name one file per fileDim-dimensional block.
    const std::vector<std::string> w = words(value);
    int fileDim = w.size() > 1 ? metaNumber(path, w[1]) : rank - 1;
    if (fileDim == 0 || fileDim > rank) fileDim = rank - 1;
    if (fileDim < 0) fail(path, "ElementDataFile '" + value + "': invalid file dimension");
    uint64_t needed = 1;
    for (int i = rank; i > fileDim; --i) needed *= dims[static_cast<size_t>(i - 1)];
    if (needed > kMaxDataFiles) fail(path, "ElementDataFile LIST needs " + std::to_string(needed) + " data files; at most " +
                                               std::to_string(kMaxDataFiles) + " are supported");
    std::ifstream in(path, std::ios::binary);
    in.seekg(text.dataStart);
    std::vector<std::string> names;
    // As MetaIO reads them: one name per line, trailing blanks and unprintables dropped, a last
    // line without a newline ignored.
    bool complete = false;
    for (std::string line; names.size() < needed && readLine(in, line, &complete) && complete;) {
      size_t end = line.size();
      while (end > 1 && (std::isspace(static_cast<unsigned char>(line[end - 1])) ||
                         !std::isprint(static_cast<unsigned char>(line[end - 1]))))
        --end;
      names.push_back(line.substr(0, end));
    }
    if (names.size() < needed)
      fail(path, "ElementDataFile LIST names " + std::to_string(names.size()) + " data file(s); the image needs " +
                     std::to_string(needed));
    for (const std::string& name : names) data.files.push_back(checkDataFile(path, name, true, allowExternal));
  } else if (value.find('%') != std::string::npos) {
    // "pattern [min [max [step]]]": files pattern(min), pattern(min + step), ... one per slice.
    const std::vector<std::string> w = words(value);
    if (w.size() > 4 || value.find('\t') != std::string::npos)
      fail(path, "ElementDataFile pattern '" + value + "': file names with blanks are not supported");
    checkNumberPattern(path, w[0]);
    const auto slices = static_cast<int64_t>(dims.back());
    int64_t first = 1, last = slices, step = 1;  // MetaIO's defaults and arithmetic
    if (w.size() >= 2) {
      first = metaNumber(path, w[1]);
      last = first + slices - 1;
    }
    if (w.size() >= 3) {
      last = metaNumber(path, w[2]);
      step = (last - first) / slices;
    }
    if (w.size() >= 4) step = metaNumber(path, w[3]);
    if (step < 1 || last < first)
      fail(path, "ElementDataFile pattern '" + value + "' runs from " + std::to_string(first) + " to " +
                     std::to_string(last) + " in steps of " + std::to_string(step) +
                     "; it needs a step of at least 1 from the first to the last number");
    const int64_t count = 1 + (last - first) / step;
    if (count != slices)
      fail(path, "ElementDataFile pattern '" + value + "' names " + std::to_string(count) + " data file(s); the image has " +
                     std::to_string(slices) + " slices");
    for (int64_t i = 0; i < count; ++i) {
      const std::string name = formatNumber(w[0], first + i * step);
      if (name.empty()) fail(path, "ElementDataFile pattern '" + value + "' makes too long a file name");
      data.files.push_back(checkDataFile(path, name, true, allowExternal));
    }
  } else {
    // One file; MetaIO also tries NAME.gz and NAME.Z (then compressed) when NAME is missing.
    const bool absolute = value.front() == '/' || value.front() == '~';
    std::string name = value;
    for (const char* extension : {".gz", ".Z"}) {
      std::error_code ec;
      if (fs::exists(absolute ? fs::path(name) : folderOf(path) / name, ec)) break;
      if (fs::exists(absolute ? fs::path(value + extension) : folderOf(path) / (value + extension), ec)) {
        name = value + extension;
        data.encoding = DataEncoding::Zlib;
        break;
      }
    }
    data.files.push_back(checkDataFile(path, name, true, allowExternal));
  }
  if (data.files.size() > 1 && spec.compressed)
    fail(path, "compressed MetaImage data split over several files is not supported");
  return data;
}

DataFiles checkNrrdFiles(const fs::path& path, bool allowExternal) {
  DataFiles data;
  std::ifstream in(path, std::ios::binary);
  std::string line;
  if (!readLine(in, line) || line.compare(0, 4, "NRRD") != 0) return data;  // ITK says "not a valid NRRD file"
  int64_t headerBytes = static_cast<int64_t>(line.size()) + 1;
  int64_t byteSkip = 0;
  std::string encoding = "raw", spec;
  bool detached = false;
  std::vector<std::string> listed;
  // teem's rules: "field: value" lines (field names case-insensitive, "data file" also
  // "datafile"), "key:=value" pairs and "#" comments skipped, an empty line ends the header.
  const auto isPattern = [](const std::string& info) {  // teem's _nrrdContainsPercentThisAndMore(info, 'd')
    size_t at = 0;
    for (;;) {
      at = info.find('%', at);
      if (at == std::string::npos || at + 1 >= info.size()) return false;
      if (info[at + 1] != '%') break;
      at += 2;
    }
    size_t j = at + 1;
    while (j < info.size() && std::isdigit(static_cast<unsigned char>(info[j]))) ++j;
    return j < info.size() && info[j] == 'd';
  };
  constexpr int64_t kMaxHeader = int64_t{16} << 20;
  while (readLine(in, line)) {
    headerBytes += static_cast<int64_t>(line.size()) + 1;
    if (headerBytes > kMaxHeader) fail(path, "NRRD header longer than " + std::to_string(kMaxHeader) + " bytes");
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) break;
    if (line[0] == '#') continue;
    const size_t colon = line.find(": "), keyValue = line.find(":=");
    if (colon == std::string::npos || (keyValue != std::string::npos && keyValue < colon)) continue;
    std::string field;
    for (const char c : line.substr(0, colon))
      if (c != ' ' && c != '_' && c != '\t') field += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 2);
    value.erase(0, value.find_first_not_of(" \t") == std::string::npos ? value.size() : value.find_first_not_of(" \t"));
    if (field == "encoding") {
      encoding.clear();
      for (const char c : trim(value)) encoding += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (field == "byteskip") {
      byteSkip = std::atoll(value.c_str());
    } else if (field == "datafile") {
      detached = true;
      spec = value;
      if (!isPattern(spec) && spec.compare(0, 4, "LIST") == 0) {
        // The rest of the header names the files, one per line, up to an empty line.
        while (listed.size() <= kMaxDataFiles && readLine(in, line)) {
          if (!line.empty() && line.back() == '\r') line.pop_back();
          if (line.empty()) break;
          listed.push_back(line);
        }
        break;
      }
    }
  }
  if (encoding == "raw") data.encoding = DataEncoding::Raw;
  else if (encoding == "gzip" || encoding == "gz") data.encoding = DataEncoding::Zlib;
  else if (encoding == "ascii" || encoding == "text" || encoding == "txt") data.encoding = DataEncoding::Ascii;
  else if (encoding == "hex") data.encoding = DataEncoding::Hex;
  else data.encoding = DataEncoding::Unchecked;  // bzip2: bounded by the voxel limit only
  const bool raw = data.encoding == DataEncoding::Raw;
  if (!detached) {
    data.offset = byteSkip < 0 ? -1 : headerBytes + (raw ? byteSkip : 0);
    return data;
  }
  data.offset = byteSkip < 0 ? -1 : (raw ? byteSkip : 0);
  if (isPattern(spec)) {
    // "pattern min max step [fileDim]"
    const size_t cut = spec.find_first_of(" \t");
    const std::string format = spec.substr(0, cut);
    checkNumberPattern(path, format);
    int first = 0, last = 0, step = 0;
    if (cut == std::string::npos || std::sscanf(spec.c_str() + cut, "%d %d %d", &first, &last, &step) != 3)
      fail(path, "NRRD data file pattern '" + spec + "' needs three numbers: min, max and step");
    if (step == 0 || (static_cast<int64_t>(last) - first) * step < 0)
      fail(path, "NRRD data file pattern '" + spec + "' never gets from " + std::to_string(first) + " to " +
                     std::to_string(last) + " in steps of " + std::to_string(step));
    const int64_t count = (static_cast<int64_t>(last) - first) / step + 1;
    if (count > static_cast<int64_t>(kMaxDataFiles))
      fail(path, "NRRD data file pattern names " + std::to_string(count) + " files; at most " +
                     std::to_string(kMaxDataFiles) + " are supported");
    for (int64_t i = 0; i < count; ++i) {
      const std::string name = formatNumber(format, first + i * step);
      if (name.empty()) fail(path, "NRRD data file pattern '" + spec + "' makes too long a file name");
      data.files.push_back(checkDataFile(path, name, false, allowExternal));
    }
  } else if (spec.compare(0, 4, "LIST") == 0) {
    if (listed.empty()) fail(path, "NRRD data file LIST names no files");
    if (listed.size() > kMaxDataFiles) fail(path, "NRRD data file LIST names more than " + std::to_string(kMaxDataFiles) + " files");
    for (const std::string& name : listed) data.files.push_back(checkDataFile(path, name, false, allowExternal));
  } else {
    data.files.push_back(checkDataFile(path, spec, false, allowExternal));
  }
  return data;
}

void checkDataBytes(const fs::path& path, const DataFiles& data, long double neededBytes, int valueBytes) {
  if (data.encoding == DataEncoding::Unchecked) return;
  const std::vector<fs::path> sources = data.files.empty() ? std::vector<fs::path>{path} : data.files;
  long double available = 0;
  for (const fs::path& file : sources) {
    std::error_code ec;
    const auto size = static_cast<int64_t>(fs::file_size(file, ec));
    if (ec) fail(path, "cannot read data file " + file.string() + ": " + ec.message());
    const int64_t offset = std::max<int64_t>(0, data.offset);  // -1 (data at the end): the whole file may count
    const auto bytes = static_cast<long double>(std::max<int64_t>(0, size - offset));
    switch (data.encoding) {
      case DataEncoding::Raw: available += bytes; break;
      case DataEncoding::Zlib:
        if (data.offset < 0) return;
        available += static_cast<long double>(inflatedSize(path, file, offset, neededBytes - available));
        break;
      case DataEncoding::Ascii: available += std::floor((bytes + 1) / 2) * valueBytes; break;  // a digit and a separator
      case DataEncoding::Hex: available += std::floor(bytes / 2); break;
      case DataEncoding::Unchecked: return;
    }
    if (available >= neededBytes) return;
  }
  fail(path, "file is truncated: the header needs " + std::to_string(static_cast<int64_t>(neededBytes)) +
                 " bytes of voxel data, but the " + (data.files.empty() ? "file has " : "data files hold ") +
                 std::to_string(static_cast<int64_t>(available)));
}

}  // namespace tessera::image::detail
