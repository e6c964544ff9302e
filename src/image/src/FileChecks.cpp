// Format checks that ITK's readers skip, in plain C++ and zlib (see FileChecks.h).

#include "FileChecks.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <vector>

#include "tessera/image/ImageIO.h"

namespace tessera::image::detail {

namespace fs = std::filesystem;

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
                 std::to_string(y) + "," + std::to_string(z) + ")");
}

void checkVoxelCount(const fs::path& path, const std::vector<uint64_t>& dims) {
  const std::string text = dimsText(dims);
  if (std::find(dims.begin(), dims.end(), 0) != dims.end()) fail(path, "image has 0 voxels (dimensions " + text + ")");
  const auto limit = static_cast<uint64_t>(kMaxVoxels);
  uint64_t count = 1;
  for (const uint64_t d : dims) {
    // Saturate instead of overflowing: anything past the limit is rejected alike.
    count = d > limit / count ? limit + 1 : count * d;
    if (count > limit)
      fail(path, "image is too large: dimensions " + text + " exceed the limit of " + std::to_string(kMaxVoxels) +
                     " voxels");
  }
}

namespace {

// ---- NIfTI pre-check ----------------------------------------------------------------------
// ITK's NIfTI reader hides three kinds of bad data: the NIfTI library fills missing voxel data
// with zeros (a warning on stderr only), it replaces NaN/Inf voxels by 0 without telling, and
// zlib reports a cut-off gzip stream only through gzerror(), which nobody asks. So before ITK
// reads a NIfTI file we parse its header ourselves, stream through the (decompressed) data to
// check that it is complete and, for float types, finite, and verify the gzip trailer (CRC).
// The same parse gives clear messages for 0 and too many voxels.

struct NiftiLayout {
  std::array<int64_t, 8> dim{};
  int datatype = 0;
  int64_t bytesPerVoxel = 0;
  int64_t voxOffset = 0;
  bool swap = false;  // header (and data) in the other byte order
  int version = 1;    // NIfTI-1 or NIfTI-2

  // Size along x, y, z; 1 beyond dim[0] (the header may hold anything there).
  std::array<int64_t, 3> xyz() const {
    std::array<int64_t, 3> s{1, 1, 1};
    for (int64_t k = 1; k <= std::min<int64_t>(dim[0], 3); ++k) s[k - 1] = dim[k];
    return s;
  }
  int64_t voxelCount() const {  // bounded by kMaxVoxels once parsed
    int64_t n = 1;
    for (int64_t i = 1; i <= dim[0]; ++i) n *= dim[i];
    return n;
  }
};

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
void checkNiftiGeometryFields(const fs::path& path, const unsigned char* h, bool nifti2, bool swap) {
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
  if (qformCode > 0)
    for (int i = 0; i < 6; ++i) check(value(256, 352, i), "quatern/qoffset");  // b, c, d, x, y, z
  if (sformCode > 0)
    for (int i = 0; i < 12; ++i) check(value(280, 400, i), "srow");
}

// Parses a NIfTI-1 (348-byte) or NIfTI-2 (540-byte) single-file header, either byte order.
NiftiLayout parseNiftiHeader(const fs::path& path, const unsigned char* h, size_t n) {
  constexpr size_t kNifti1 = 348, kNifti2 = 540;
  NiftiLayout layout;
  double voxOffset = 0;
  size_t headerSize = 0;
  for (const bool swap : {false, true}) {
    const int32_t sizeofHdr = n >= 4 ? readField<int32_t>(h, swap) : 0;
    if (n >= kNifti1 && sizeofHdr == 348 && std::memcmp(h + 344, "n+1", 4) == 0) {
      for (int i = 0; i < 8; ++i) layout.dim[i] = readField<int16_t>(h + 40 + 2 * i, swap);
      layout.datatype = readField<int16_t>(h + 70, swap);
      voxOffset = readField<float>(h + 108, swap);
      headerSize = kNifti1;
    } else if (n >= kNifti2 && sizeofHdr == 540 && std::memcmp(h + 4, "n+2", 4) == 0) {
      for (int i = 0; i < 8; ++i) layout.dim[i] = readField<int64_t>(h + 16 + 8 * i, swap);
      layout.datatype = readField<int16_t>(h + 12, swap);
      voxOffset = static_cast<double>(readField<int64_t>(h + 168, swap));
      headerSize = kNifti2;
    }
    if (headerSize) {
      layout.swap = swap;
      layout.version = headerSize == kNifti2 ? 2 : 1;
      break;
    }
  }
  if (!headerSize) fail(path, "not a NIfTI file (no single-file NIfTI-1 or NIfTI-2 header)");
  checkNiftiGeometryFields(path, h, headerSize == kNifti2, layout.swap);

  const int64_t rank = layout.dim[0];
  if (rank < 1 || rank > 7) fail(path, "invalid NIfTI header: dim[0] = " + std::to_string(rank));
  std::vector<uint64_t> dims;
  for (int64_t i = 1; i <= rank; ++i) {
    if (layout.dim[i] < 0)
      fail(path, "invalid NIfTI header: negative dimension (" +
                     dimsText(std::vector<int64_t>(layout.dim.begin() + 1, layout.dim.begin() + 1 + rank)) + ")");
    dims.push_back(static_cast<uint64_t>(layout.dim[i]));
  }
  checkVoxelCount(path, dims);
  layout.bytesPerVoxel = niftiBytesPerVoxel(layout.datatype);
  if (layout.bytesPerVoxel == 0) fail(path, "unsupported NIfTI datatype " + std::to_string(layout.datatype));
  if (!std::isfinite(voxOffset) || voxOffset < 0 || voxOffset > 1e12)
    fail(path, "invalid NIfTI header: vox_offset = " + std::to_string(voxOffset));
  layout.voxOffset = std::max<int64_t>(static_cast<int64_t>(voxOffset), static_cast<int64_t>(headerSize));
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

// Finds the first NaN/Inf among float32/float64 voxels fed in arbitrary byte chunks.
class NonFiniteScanner {
 public:
  NonFiniteScanner(int datatype, bool swap) : swap_(swap), size_(datatype == 64 ? 8 : 4) {}

  // Returns false once a non-finite value was found (see index() and isNaN()).
  bool feed(const unsigned char* p, size_t n) {
    while (n > 0) {
      if (carried_ > 0 || n < size_) {  // a value split across chunks
        const size_t take = std::min(size_ - carried_, n);
        std::memcpy(carry_ + carried_, p, take);
        carried_ += take;
        p += take;
        n -= take;
        if (carried_ < size_) return true;
        carried_ = 0;
        if (!check(carry_)) return false;
        continue;
      }
      for (; n >= size_; p += size_, n -= size_)
        if (!check(p)) return false;
    }
    return true;
  }
  int64_t index() const { return index_; }
  bool isNaN() const { return nan_; }

 private:
  bool check(const unsigned char* p) {
    const double v = size_ == 8 ? readField<double>(p, swap_) : readField<float>(p, swap_);
    if (std::isfinite(v)) {
      ++index_;
      return true;
    }
    nan_ = std::isnan(v);
    return false;
  }

  bool swap_;
  size_t size_;
  unsigned char carry_[8] = {};
  size_t carried_ = 0;
  int64_t index_ = 0;
  bool nan_ = false;
};

}  // namespace

int checkNiftiFile(const fs::path& path, bool gzip) {
  ByteStream in(path, gzip);
  std::vector<unsigned char> buffer(1 << 20);
  size_t got = in.read(buffer.data(), 540);
  if (got < 540) in.checkIntact();  // a gzip stream cut inside the header is truncation, not "no header"
  const NiftiLayout layout = parseNiftiHeader(path, buffer.data(), got);
  const int64_t needed = layout.voxelCount() * layout.bytesPerVoxel;
  const bool floats = layout.datatype == 16 || layout.datatype == 64;

  int64_t available = 0;  // bytes of voxel data in the file
  if (!gzip && !floats) {
    available = static_cast<int64_t>(fs::file_size(path)) - layout.voxOffset;
  } else {
    // Stream through the data: the part after vox_offset feeds the NaN scan, and the whole
    // stream has to be read for zlib to check the gzip trailer.
    NonFiniteScanner scanner(layout.datatype, layout.swap);
    int64_t position = 0;  // file offset of buffer[0]
    for (;;) {
      const int64_t begin = std::max<int64_t>(position, layout.voxOffset);
      const int64_t end = std::min<int64_t>(position + static_cast<int64_t>(got), layout.voxOffset + needed);
      if (end > begin) {
        available += end - begin;
        if (floats && !scanner.feed(buffer.data() + (begin - position), static_cast<size_t>(end - begin)))
          failNonFinite(path, scanner.isNaN(), scanner.index(), layout.xyz());
      }
      position += static_cast<int64_t>(got);
      if (got == 0) break;
      got = in.read(buffer.data(), buffer.size());
    }
    in.checkIntact();
  }
  if (available < needed)
    fail(path, "file is truncated: the header needs " + std::to_string(needed) + " bytes of voxel data from offset " +
                   std::to_string(layout.voxOffset) + ", but the file has " +
                   std::to_string(std::max<int64_t>(0, available)));
  return layout.version;
}

// ---- MetaImage pre-check ------------------------------------------------------------------
// MetaIO reports a short or cut-off compressed data section only on stderr and hands back a
// partly filled buffer. Compare the bytes ITK will read with the bytes there are, inflating
// compressed data to count them. File lists and slice patterns are left to MetaIO.

namespace {

struct MetaHeader {
  int64_t bytes = 0;       // length of the header text (where LOCAL data starts)
  int64_t headerSize = 0;  // bytes to skip in a separate data file; -1: data at its end
  bool compressed = false;
  std::string dataFile;  // ElementDataFile: LOCAL, a file name, LIST or a pattern
};

MetaHeader readMetaHeader(const fs::path& path) {
  MetaHeader h;
  std::ifstream in(path, std::ios::binary);
  constexpr int64_t kMaxHeader = 1 << 20;
  for (std::string line; h.bytes < kMaxHeader && std::getline(in, line);) {
    h.bytes += static_cast<int64_t>(line.size()) + 1;
    const size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = trim(line.substr(0, eq));
    const std::string value = trim(line.substr(eq + 1));
    if (key == "CompressedData") h.compressed = value == "True" || value == "true";
    if (key == "HeaderSize") h.headerSize = std::atoll(value.c_str());
    if (key == "ElementDataFile") {  // always the last header field
      h.dataFile = value;
      break;
    }
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

void checkMetaImageData(const fs::path& path, long double neededBytes) {
  const MetaHeader h = readMetaHeader(path);
  if (h.dataFile.empty() || h.dataFile.rfind("LIST", 0) == 0 || h.dataFile.find('%') != std::string::npos) return;
  const bool local = h.dataFile == "LOCAL";
  const fs::path dataPath = local ? path : path.parent_path() / h.dataFile;
  const int64_t offset = local ? h.bytes : h.headerSize;
  std::error_code ec;
  const auto fileSize = fs::file_size(dataPath, ec);
  if (ec || offset < 0) return;  // a missing data file or data "at the end": MetaIO reports or copes

  const int64_t available = h.compressed ? inflatedSize(path, dataPath, offset, neededBytes)
                                         : static_cast<int64_t>(fileSize) - offset;
  if (static_cast<long double>(available) < neededBytes)
    fail(path, "file is truncated: the header needs " + std::to_string(static_cast<int64_t>(neededBytes)) +
                   " bytes of voxel data, but the file has " + std::to_string(std::max<int64_t>(0, available)));
}

}  // namespace tessera::image::detail
