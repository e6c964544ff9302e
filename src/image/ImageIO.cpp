// Image reading and writing through ITK. ITK stays in this file: the rest of the project sees
// Volume only. Each ImageIO is created explicitly from the file name instead of through ITK's
// object factories, because factory registration depends on how the final executable was
// configured (ITK_USE_FILE) and silently finds no reader when it was not.

#include "tessera/image/ImageIO.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <random>
#include <sstream>
#include <type_traits>

#include "itkGDCMImageIO.h"
#include "itkGDCMSeriesFileNames.h"
#include "itkImage.h"
#include "itkImageFileReader.h"
#include "itkImageFileWriter.h"
#include "itkImageSeriesReader.h"
#include "itkMetaDataObject.h"
#include "itkMetaImageIO.h"
#include "itkNiftiImageIO.h"
#include "itkNrrdImageIO.h"

namespace tessera::image {

namespace fs = std::filesystem;

namespace {

using FloatImage = itk::Image<float, 3>;

[[noreturn]] void fail(const fs::path& path, const std::string& problem) {
  throw ImageError(path.string() + ": " + problem);
}

std::string trim(const std::string& s) {
  const auto isSpace = [](unsigned char c) { return std::isspace(c) || c == '\0'; };
  size_t b = 0, e = s.size();
  while (b < e && isSpace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && isSpace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// Drops a leading "tag: " such as "ITK ERROR: NrrdImageIO(0x55d0c8a0): " or "[nrrd] ".
std::string withoutPrefix(std::string line, const std::string& start, const std::string& end) {
  if (line.compare(0, start.size(), start) != 0) return line;
  const size_t cut = line.find(end, start.size());
  return cut == std::string::npos ? line : line.substr(cut + end.size());
}

// ITK exception text spans several lines (file, line, class, then the description). Keep the
// description's first line without ITK's class tag; when it only introduces a list of causes
// ("Error reading x:", as teem's NRRD errors do) add the innermost cause, the last line.
std::string shortReason(const itk::ExceptionObject& e) {
  std::istringstream text(e.GetDescription());
  std::vector<std::string> lines;
  for (std::string line; std::getline(text, line);)
    if (!trim(line).empty()) lines.push_back(trim(line));
  if (lines.empty()) return "ITK could not read the data";
  std::string reason = withoutPrefix(lines.front(), "ITK ERROR: ", "): ");
  if (!reason.empty() && reason.back() == ':' && lines.size() > 1) {
    std::string cause = withoutPrefix(lines.back(), "[", "] ");
    const size_t colon = cause.find(": ");  // "_nrrdEncodingRaw_read: fread got only ..."
    if (colon != std::string::npos && cause.find(' ') > colon) cause = cause.substr(colon + 2);
    reason += " " + cause;
  }
  constexpr size_t kMaxLength = 240;
  if (reason.size() > kMaxLength) reason = reason.substr(0, kMaxLength) + "...";
  return reason;
}

// ---- formats ------------------------------------------------------------------------------

enum class Format { Nifti, NiftiGz, Meta, Nrrd, Unknown };

std::string lowerName(const fs::path& path) {
  std::string name = path.filename().string();
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  return name;
}

bool endsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// "256x256x120" for messages.
template <typename Dims>
std::string dimsText(const Dims& dims) {
  std::ostringstream s;
  for (size_t i = 0; i < dims.size(); ++i) s << (i ? "x" : "") << dims[i];
  return s.str();
}

Format formatOf(const fs::path& path) {
  const std::string name = lowerName(path);
  if (endsWith(name, ".nii.gz")) return Format::NiftiGz;
  if (endsWith(name, ".nii")) return Format::Nifti;
  if (endsWith(name, ".mha") || endsWith(name, ".mhd")) return Format::Meta;
  if (endsWith(name, ".nrrd") || endsWith(name, ".nhdr")) return Format::Nrrd;
  return Format::Unknown;
}

// The extension as written (".nii.gz" keeps both parts) for temporary file names.
std::string fullExtension(const fs::path& path) {
  const std::string name = path.filename().string();
  const std::string lower = lowerName(path);
  const size_t n = endsWith(lower, ".nii.gz") ? 7 : path.extension().string().size();
  return name.substr(name.size() - n);
}

itk::ImageIOBase::Pointer ioFor(Format format) {
  switch (format) {
    case Format::Nifti:
    case Format::NiftiGz: return itk::NiftiImageIO::New().GetPointer();
    case Format::Meta: return itk::MetaImageIO::New().GetPointer();
    case Format::Nrrd: return itk::NrrdImageIO::New().GetPointer();
    case Format::Unknown: break;
  }
  return nullptr;
}

const char* formatName(Format format) {
  switch (format) {
    case Format::Nifti:
    case Format::NiftiGz: return "NIfTI";
    case Format::Meta: return "MetaImage";
    case Format::Nrrd: return "NRRD";
    case Format::Unknown: break;
  }
  return "image";
}

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
// with an SVD that calls abort() on non-finite entries; absurd magnitudes overflow on the way
// there. Refuse such headers first. A field is checked only when its form code says it is used.
void checkNiftiGeometryFields(const fs::path& path, const unsigned char* h, bool nifti2, bool swap) {
  const auto value = [&](size_t offset1, size_t offset2, int i) {
    return nifti2 ? readField<double>(h + offset2 + 8 * i, swap) : readField<float>(h + offset1 + 4 * i, swap);
  };
  const int qformCode = nifti2 ? readField<int32_t>(h + 344, swap) : readField<int16_t>(h + 252, swap);
  const int sformCode = nifti2 ? readField<int32_t>(h + 348, swap) : readField<int16_t>(h + 254, swap);
  constexpr double kLimit = 1e9;  // mm; a billion millimetres is no patient
  const auto check = [&](double v, const char* name) {
    if (!std::isfinite(v) || std::abs(v) > kLimit)
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
  const std::string dims = dimsText(std::vector<int64_t>(layout.dim.begin() + 1, layout.dim.begin() + 1 + rank));
  int64_t count = 1;
  for (int64_t i = 1; i <= rank; ++i) {
    if (layout.dim[i] < 0) fail(path, "invalid NIfTI header: negative dimension (" + dims + ")");
    if (layout.dim[i] == 0) fail(path, "image has 0 voxels (dimensions " + dims + ")");
    // Saturate instead of overflowing: anything past the limit is rejected alike.
    count = layout.dim[i] > kMaxVoxels / count ? kMaxVoxels + 1 : count * layout.dim[i];
    if (count > kMaxVoxels)
      fail(path, "image is too large: dimensions " + dims + " exceed the limit of " + std::to_string(kMaxVoxels) +
                     " voxels");
  }
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

[[noreturn]] void failNonFinite(const fs::path& path, bool nan, int64_t i, const std::array<int64_t, 3>& size) {
  const int64_t x = i % size[0], y = (i / size[0]) % size[1], z = i / (size[0] * size[1]);
  fail(path, std::string("contains ") + (nan ? "NaN" : "Inf") + " at voxel (" + std::to_string(x) + "," +
                 std::to_string(y) + "," + std::to_string(z) + ")");
}

// Returns the parsed layout of a file that passed.
NiftiLayout checkNiftiFile(const fs::path& path, Format format) {
  const bool gzip = format == Format::NiftiGz;
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
          failNonFinite(path, scanner.isNaN(), scanner.index(), {layout.dim[1], layout.dim[2], layout.dim[3]});
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
  return layout;
}

// ---- MetaImage pre-check ------------------------------------------------------------------
// MetaIO reports a short data section only on stderr and hands back a partly filled buffer.
// For uncompressed data (inline or in one raw file) compare the size ITK will read with the
// bytes there are. Compressed data and file lists are left to MetaIO.

void checkMetaImageData(const fs::path& path, const itk::ImageIOBase& io) {
  std::ifstream in(path, std::ios::binary);
  std::string line;
  int64_t headerBytes = 0;
  int64_t headerSize = 0;
  bool compressed = false;
  std::string dataFile;
  constexpr int64_t kMaxHeader = 1 << 20;
  while (headerBytes < kMaxHeader && std::getline(in, line)) {
    headerBytes += static_cast<int64_t>(line.size()) + 1;
    const size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = trim(line.substr(0, eq));
    const std::string value = trim(line.substr(eq + 1));
    if (key == "CompressedData") compressed = value == "True" || value == "true";
    if (key == "HeaderSize") headerSize = std::atoll(value.c_str());
    if (key == "ElementDataFile") {  // always the last header field
      dataFile = value;
      break;
    }
  }
  if (dataFile.empty() || compressed || headerSize < 0) return;

  int64_t available = 0;
  if (dataFile == "LOCAL") {
    available = static_cast<int64_t>(fs::file_size(path)) - headerBytes;
  } else {
    const fs::path raw = path.parent_path() / dataFile;
    std::error_code ec;
    const auto rawSize = fs::file_size(raw, ec);
    if (ec || dataFile.rfind("LIST", 0) == 0 || dataFile.find('%') != std::string::npos) return;
    available = static_cast<int64_t>(rawSize) - headerSize;
  }
  long double needed = static_cast<long double>(io.GetComponentSize()) * io.GetNumberOfComponents();
  for (unsigned i = 0; i < io.GetNumberOfDimensions(); ++i) needed *= static_cast<long double>(io.GetDimensions(i));
  if (static_cast<long double>(available) < needed)
    fail(path, "file is truncated: the header needs " + std::to_string(static_cast<int64_t>(needed)) +
                   " bytes of voxel data, but the file has " + std::to_string(std::max<int64_t>(0, available)));
}

// ---- reading ------------------------------------------------------------------------------

// Checks the size the header announces, before any voxel memory is allocated.
void checkImageSize(const fs::path& path, const itk::ImageIOBase& io) {
  const unsigned rank = io.GetNumberOfDimensions();
  std::vector<itk::SizeValueType> sizes;
  long double count = 1;  // no overflow for any header value
  for (unsigned i = 0; i < rank; ++i) {
    sizes.push_back(io.GetDimensions(i));
    count *= static_cast<long double>(sizes.back());
  }
  const std::string dims = dimsText(sizes);
  for (unsigned i = 3; i < rank; ++i)
    if (io.GetDimensions(i) > 1)
      fail(path, "image has " + std::to_string(rank) + " dimensions (" + dims + "); only 2D and 3D images are supported");
  if (io.GetNumberOfComponents() != 1)
    fail(path, "image has " + std::to_string(io.GetNumberOfComponents()) +
                   " values per voxel (RGB or vector data); only scalar images are supported");
  if (count == 0) fail(path, "image has 0 voxels (dimensions " + dims + ")");
  if (count > static_cast<long double>(kMaxVoxels))
    fail(path, "image is too large: dimensions " + dims + " exceed the limit of " + std::to_string(kMaxVoxels) +
                   " voxels");
}

Geometry geometryOf(const FloatImage& image) {
  Geometry g;
  const auto size = image.GetLargestPossibleRegion().GetSize();
  for (unsigned i = 0; i < 3; ++i) {
    g.size[i] = static_cast<int64_t>(size[i]);
    g.spacing[i] = image.GetSpacing()[i];
    g.origin[i] = image.GetOrigin()[i];
    for (unsigned k = 0; k < 3; ++k) g.direction[i * 3 + k] = image.GetDirection()(i, k);
  }
  return g;
}

// NaN or Inf would poison every later computation (training losses, metrics) silently.
void checkFinite(const fs::path& path, const Volume& v) {
  const auto bad = std::find_if(v.voxels.begin(), v.voxels.end(), [](float x) { return !std::isfinite(x); });
  if (bad != v.voxels.end()) failNonFinite(path, std::isnan(*bad), bad - v.voxels.begin(), v.geometry.size);
}

template <typename Reader, typename Check>
Volume runReader(const fs::path& path, Reader& reader, const itk::ImageIOBase& io, Check&& checkHeader) {
  reader.UpdateOutputInformation();
  checkImageSize(path, io);
  checkHeader();
  reader.Update();
  const FloatImage& image = *reader.GetOutput();
  Volume v;
  v.geometry = geometryOf(image);
  const float* data = image.GetBufferPointer();
  v.voxels.assign(data, data + v.geometry.voxelCount());
  return v;
}

Volume readImageFile(const fs::path& path) {
  const Format format = formatOf(path);
  if (format == Format::Unknown)
    fail(path, "unrecognised image format (expected .nii, .nii.gz, .mha, .mhd, .nrrd, .nhdr or a DICOM series "
               "directory)");
  if (!std::ifstream(path, std::ios::binary)) fail(path, std::string("cannot open: ") + std::strerror(errno));
  int niftiVersion = 0;
  if (format == Format::Nifti || format == Format::NiftiGz) niftiVersion = checkNiftiFile(path, format).version;

  itk::ImageIOBase::Pointer io = ioFor(format);
  if (!io->CanReadFile(path.c_str())) {
    // ITK 5.2's NIfTI library predates NIfTI-2; say so instead of "not valid".
    if (niftiVersion == 2) fail(path, "NIfTI-2 is not supported by the installed ITK; save the image as NIfTI-1");
    fail(path, std::string("not a valid ") + formatName(format) + " file");
  }
  auto reader = itk::ImageFileReader<FloatImage>::New();
  reader->SetImageIO(io);
  reader->SetFileName(path.string());
  const auto checkData = [&] {
    if (format == Format::Meta) checkMetaImageData(path, *io);
  };
  return runReader(path, *reader, *io, checkData);
}

std::string dicomTag(const itk::GDCMImageIO& io, const std::string& key) {
  std::string value;
  itk::ExposeMetaData<std::string>(io.GetMetaDataDictionary(), key, value);
  return trim(value);
}

// "series: UID1, UID2, ..." naming the SeriesInstanceUIDs. The group keys of
// GDCMSeriesFileNames carry appended details (series number, slice size ...), so the plain
// UID is read from the first file of each group; groups sharing one UID are said to differ.
std::string describeSeries(itk::GDCMSeriesFileNames& names, const std::vector<std::string>& groups) {
  std::vector<std::string> uids;
  for (const std::string& group : groups) {
    auto io = itk::GDCMImageIO::New();
    const auto files = names.GetFileNames(group);
    io->SetFileName(files.front());
    io->ReadImageInformation();
    const std::string uid = dicomTag(*io, "0020|000e");
    if (std::find(uids.begin(), uids.end(), uid) == uids.end()) uids.push_back(uid);
  }
  std::string text = "series: ";
  constexpr size_t kShown = 3;
  for (size_t i = 0; i < std::min(uids.size(), kShown); ++i) text += (i ? ", " : "") + uids[i];
  if (uids.size() > kShown) text += ", ...";
  if (uids.size() < groups.size()) text += "; slices differ in size, thickness or series number";
  return text;
}

Volume readDicomDirectory(const fs::path& path) {
  auto names = itk::GDCMSeriesFileNames::New();
  // Series details also split by series number, slice thickness and rows/columns: slices that
  // differ in those could not be stacked into one volume anyway.
  names->SetUseSeriesDetails(true);
  names->SetRecursive(false);
  names->SetDirectory(path.string());
  const std::vector<std::string>& uids = names->GetSeriesUIDs();
  if (uids.empty()) fail(path, "no DICOM series found");
  if (uids.size() > 1) fail(path, std::to_string(uids.size()) + " DICOM series found; pass one series directory (" +
                                      describeSeries(*names, uids) + ")");

  auto io = itk::GDCMImageIO::New();
  auto reader = itk::ImageSeriesReader<FloatImage>::New();
  reader->SetImageIO(io);
  reader->SetFileNames(names->GetFileNames(uids.front()));
  Volume v = runReader(path, *reader, *io, [] {});
  v.modality = dicomTag(*io, "0008|0060");
  v.bodyPart = dicomTag(*io, "0018|0015");
  return v;
}

// ---- writing ------------------------------------------------------------------------------

template <typename Pixel>
Pixel castPixel(float v) {
  if constexpr (std::is_same_v<Pixel, float>) {
    return v;
  } else {
    if (std::isnan(v)) return 0;
    const float lo = static_cast<float>(std::numeric_limits<Pixel>::min());
    const float hi = static_cast<float>(std::numeric_limits<Pixel>::max());
    return static_cast<Pixel>(std::lround(std::clamp(v, lo, hi)));
  }
}

template <typename Pixel>
void writeWithItk(const Volume& volume, const std::string& file, Format format) {
  using Image = itk::Image<Pixel, 3>;
  auto image = Image::New();
  typename Image::RegionType region;
  typename Image::SpacingType spacing;
  typename Image::PointType origin;
  typename Image::DirectionType direction;
  const Geometry& g = volume.geometry;
  for (unsigned i = 0; i < 3; ++i) {
    region.SetSize(i, static_cast<itk::SizeValueType>(g.size[i]));
    spacing[i] = g.spacing[i];
    origin[i] = g.origin[i];
    for (unsigned k = 0; k < 3; ++k) direction(i, k) = g.direction[i * 3 + k];
  }
  image->SetRegions(region);
  image->SetSpacing(spacing);
  image->SetOrigin(origin);
  image->SetDirection(direction);
  image->Allocate();
  Pixel* out = image->GetBufferPointer();
  std::transform(volume.voxels.begin(), volume.voxels.end(), out, castPixel<Pixel>);

  auto writer = itk::ImageFileWriter<Image>::New();
  writer->SetImageIO(ioFor(format));
  writer->SetFileName(file);
  writer->SetInput(image);
  writer->Update();
}

// A name beside the target that keeps its extension (ITK picks compression from it) and
// starts with a dot so directory listings and globbing skip half-written files.
fs::path temporaryPathFor(const fs::path& target) {
  std::random_device rd;
  std::ostringstream name;
  name << '.' << target.filename().string() << ".tmp-" << std::hex << rd() << fullExtension(target);
  return target.parent_path() / name.str();
}

// fsync of a file or directory; errors name `target`, the path the caller asked for.
void syncPath(const fs::path& path, bool directory, const fs::path& target) {
  const int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) fail(target, "cannot open " + path.string() + " for fsync: " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) fail(target, "fsync of " + path.string() + " failed: " + std::strerror(err));
}

void checkWritable(const Volume& volume, const fs::path& path, Format format) {
  const Geometry& g = volume.geometry;
  if (format == Format::Unknown || endsWith(lowerName(path), ".mhd") || endsWith(lowerName(path), ".nhdr"))
    fail(path, "cannot write this format (use .nii, .nii.gz, .mha or .nrrd)");
  if (g.size[0] < 1 || g.size[1] < 1 || g.size[2] < 1) fail(path, "cannot write an image of size " + g.describe());
  if (volume.voxels.size() != static_cast<size_t>(g.voxelCount()))
    fail(path, "volume holds " + std::to_string(volume.voxels.size()) + " voxels but its grid " + g.describe() +
                   " needs " + std::to_string(g.voxelCount()));
  const fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail(path, "directory " + dir.string() + " does not exist");
}

// Converts every failure inside `body` to an ImageError naming `path`.
template <typename Body>
auto withImageErrors(const fs::path& path, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const ImageError&) {
    throw;
  } catch (const itk::ExceptionObject& e) {
    fail(path, shortReason(e));
  } catch (const std::bad_alloc&) {
    fail(path, "out of memory");
  } catch (const std::exception& e) {
    fail(path, e.what());
  }
}

}  // namespace

Volume readImage(const fs::path& path) {
  return withImageErrors(path, [&] {
    std::error_code ec;
    const fs::file_status status = fs::status(path, ec);
    if (ec && ec != std::errc::no_such_file_or_directory) fail(path, ec.message());  // e.g. permission denied
    if (!fs::exists(status)) fail(path, "no such file or directory");
    Volume v = fs::is_directory(status) ? readDicomDirectory(path) : readImageFile(path);
    checkFinite(path, v);
    return v;
  });
}

void writeImage(const Volume& volume, const fs::path& path, PixelType pixelType) {
  const Format format = formatOf(path);
  checkWritable(volume, path, format);
  const fs::path temp = temporaryPathFor(path);
  try {
    withImageErrors(path, [&] {
      switch (pixelType) {
        case PixelType::Float32: writeWithItk<float>(volume, temp.string(), format); break;
        case PixelType::UInt8: writeWithItk<uint8_t>(volume, temp.string(), format); break;
        case PixelType::Int16: writeWithItk<int16_t>(volume, temp.string(), format); break;
      }
      syncPath(temp, false, path);
      std::error_code ec;
      fs::rename(temp, path, ec);
      if (ec) fail(path, "cannot rename the temporary file into place: " + ec.message());
      // The rename itself lives in the directory; sync it so the new name survives a crash.
      syncPath(path.parent_path().empty() ? fs::path(".") : path.parent_path(), true, path);
    });
  } catch (...) {
    std::error_code ignored;
    fs::remove(temp, ignored);
    throw;
  }
}

}  // namespace tessera::image
