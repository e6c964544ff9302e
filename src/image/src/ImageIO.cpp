// Image reading and writing through ITK. ITK stays in this file: the rest of the project sees
// Volume only. Each ImageIO is created explicitly from the file name instead of through ITK's
// object factories, because factory registration depends on how the final executable was
// configured (ITK_USE_FILE) and silently finds no reader when it was not.

#include "tessera/image/ImageIO.h"


#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <mutex>
#include <sstream>
#include <type_traits>

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include "gdcmReader.h"
#include "gdcmTrace.h"
#include "gdcmTransferSyntax.h"
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

#include "FileChecks.h"
#include "tessera/common/AtomicFile.h"

namespace tessera::image {

namespace fs = std::filesystem;

namespace {

using detail::dimsText;
using detail::fail;
using detail::failNonFinite;
using detail::Limits;
using detail::trim;
using FloatImage = itk::Image<float, 3>;

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

enum class Format { Nifti, NiftiGz, NiftiPair, Meta, Nrrd, Unknown };

std::string lowerName(const fs::path& path) {
  std::string name = path.filename().string();
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  return name;
}

bool endsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Format formatOf(const fs::path& path) {
  const std::string name = lowerName(path);
  if (endsWith(name, ".nii.gz")) return Format::NiftiGz;
  if (endsWith(name, ".nii")) return Format::Nifti;
  if (endsWith(name, ".hdr") || endsWith(name, ".img")) return Format::NiftiPair;
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
    case Format::NiftiPair:
    case Format::Unknown: break;
  }
  return nullptr;
}

const char* formatName(Format format) {
  switch (format) {
    case Format::Nifti:
    case Format::NiftiGz: return "NIfTI";
    case Format::NiftiPair: return "NIfTI/Analyze";
    case Format::Meta: return "MetaImage";
    case Format::Nrrd: return "NRRD";
    case Format::Unknown: break;
  }
  return "image";
}

// ---- reading ------------------------------------------------------------------------------

// Checks the size the header announces, before any voxel memory is allocated: `io` for the
// file's own layout, `size` for the whole image (a DICOM series stacks many files).
void checkImageSize(const fs::path& path, const itk::ImageIOBase& io, const FloatImage::SizeType& size,
                    int64_t maxVoxels) {
  const unsigned rank = io.GetNumberOfDimensions();
  std::vector<uint64_t> sizes;
  for (unsigned i = 0; i < rank; ++i) sizes.push_back(io.GetDimensions(i));
  for (unsigned i = 3; i < rank; ++i)
    if (sizes[i] > 1)
      fail(path, "image has " + std::to_string(rank) + " dimensions (" + dimsText(sizes) +
                     "); only 2D and 3D images are supported");
  if (io.GetNumberOfComponents() != 1)
    fail(path, "image has " + std::to_string(io.GetNumberOfComponents()) +
                   " values per voxel (RGB or vector data); only scalar images are supported");
  std::vector<uint64_t> dims(size.begin(), size.end());
  if (rank < 3) dims.resize(std::max(rank, 1u));  // "3x0" for a 2D header, as written
  detail::checkVoxelCount(path, dims, maxVoxels);
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

template <typename T>
void convertToFloat(const char* from, float* to, size_t count) {
  const T* values = reinterpret_cast<const T*>(from);
  std::transform(values, values + count, to, [](T v) { return static_cast<float>(v); });
}

// Reads all voxels of `io` (its header already read) as float into `out`: straight into it when
// the file holds floats, else through one buffer of the file's own type (what ITK's reader does,
// minus the image it would allocate besides ours).
void readVoxelsInto(const fs::path& path, itk::ImageIOBase& io, float* out, int64_t count) {
  using Component = itk::IOComponentEnum;
  const unsigned rank = io.GetNumberOfDimensions();
  itk::ImageIORegion region(rank);
  int64_t n = 1;
  for (unsigned i = 0; i < rank; ++i) {
    region.SetIndex(i, 0);
    region.SetSize(i, io.GetDimensions(i));
    n *= static_cast<int64_t>(io.GetDimensions(i));
  }
  if (n != count || io.GetNumberOfComponents() != 1)
    fail(path, "the file holds " + std::to_string(n) + " voxels where its header promised " + std::to_string(count));
  io.SetIORegion(region);
  if (io.GetComponentType() == Component::FLOAT) {
    io.Read(out);
    return;
  }
  const auto bytes = static_cast<size_t>(io.GetImageSizeInBytes());
  std::unique_ptr<char[]> buffer(new char[bytes]);
  io.Read(buffer.get());
  const auto c = static_cast<size_t>(count);
  switch (io.GetComponentType()) {
    case Component::UCHAR: convertToFloat<unsigned char>(buffer.get(), out, c); break;
    case Component::CHAR: convertToFloat<signed char>(buffer.get(), out, c); break;
    case Component::USHORT: convertToFloat<unsigned short>(buffer.get(), out, c); break;
    case Component::SHORT: convertToFloat<short>(buffer.get(), out, c); break;
    case Component::UINT: convertToFloat<unsigned int>(buffer.get(), out, c); break;
    case Component::INT: convertToFloat<int>(buffer.get(), out, c); break;
    case Component::ULONG: convertToFloat<unsigned long>(buffer.get(), out, c); break;
    case Component::LONG: convertToFloat<long>(buffer.get(), out, c); break;
    case Component::ULONGLONG: convertToFloat<unsigned long long>(buffer.get(), out, c); break;
    case Component::LONGLONG: convertToFloat<long long>(buffer.get(), out, c); break;
    case Component::DOUBLE: convertToFloat<double>(buffer.get(), out, c); break;
    default: fail(path, "unsupported voxel type " + io.GetComponentTypeAsString(io.GetComponentType()));
  }
}

// Reads the header through ITK (geometry), checks it, then fills the volume with `readVoxels`.
// Voxel memory is one float per voxel, allocated only after every check passed.
template <typename Reader, typename Check, typename ReadVoxels>
Volume runReader(const fs::path& path, Reader& reader, const itk::ImageIOBase& io, int64_t maxVoxels,
                 Check&& checkHeader, ReadVoxels&& readVoxels) {
  reader.UpdateOutputInformation();
  const FloatImage& info = *reader.GetOutput();
  checkImageSize(path, io, info.GetLargestPossibleRegion().GetSize(), maxVoxels);
  checkHeader();
  Volume v;
  v.geometry = geometryOf(info);
  v.voxels.resize(static_cast<size_t>(v.geometry.voxelCount()));
  readVoxels(v);
  return v;
}

// NIfTI-2, .hdr/.img pairs (NIfTI-1 or Analyze 7.5) and 4D NIfTI: decoded and placed by our own
// header code (ITK 5.2 reads neither NIfTI-2 nor 4D into a 3D image).
Volume readOwnNifti(const fs::path& path, bool gzip, const detail::NiftiLayout& layout) {
  // Parallel or zero axes in the sform (or quaternion) leave no invertible grid.
  const auto& d = layout.geometry.direction;
  const double det = d[0] * (d[4] * d[8] - d[5] * d[7]) - d[1] * (d[3] * d[8] - d[5] * d[6]) +
                     d[2] * (d[3] * d[7] - d[4] * d[6]);
  if (!(std::abs(det) > 1e-6)) fail(path, "invalid NIfTI header: the voxel axes of its affine are parallel (no 3D grid)");
  Volume v;
  v.geometry = layout.geometry;
  v.volumes = layout.volumes;
  v.voxels.resize(static_cast<size_t>(v.geometry.voxelCount()));
  detail::readNiftiVoxels(path, gzip, layout, v.voxels.data());
  return v;
}

Volume readImageFile(fs::path path, const Limits& limits, const ReadOptions& options) {
  Format format = formatOf(path);
  if (format == Format::Unknown)
    fail(path, "unrecognised image format (expected .nii, .nii.gz, .hdr/.img, .mha, .mhd, .nrrd, .nhdr, a DICOM file "
               "or a DICOM series directory)");
  if (format == Format::NiftiPair && endsWith(lowerName(path), ".img")) {
    fs::path header = path;
    header.replace_extension(path.extension() == ".IMG" ? ".HDR" : ".hdr");
    std::error_code missing;
    if (!fs::exists(header, missing))
      fail(path, "the header " + header.filename().string() + " is missing (an .img holds voxels only; its .hdr describes them)");
    path = header;
  }
  detail::checkRegularFile(path);  // a FIFO or device would block or never end
  if (!std::ifstream(path, std::ios::binary)) fail(path, std::string("cannot open: ") + std::strerror(errno));
  const bool pair = format == Format::NiftiPair;
  const bool nifti = format == Format::Nifti || format == Format::NiftiGz || pair;
  const bool gzip = format == Format::NiftiGz;
  detail::NiftiLayout layout;
  if (nifti) {
    layout = detail::readNiftiHeader(path, gzip, limits.maxVoxels, pair);
    layout.replaceNaN = options.replaceNaN;
    layout.nanValue = options.nanValue;
    const int64_t volumes = layout.volumes;
    detail::selectNiftiVolume(path, layout, options.volume);
    if (pair || layout.version != 1 || volumes > 1) return readOwnNifti(path, gzip, layout);
  }
  // teem might open data files while reading the header: check them before ITK does anything.
  detail::DataFiles nrrdData;
  if (format == Format::Nrrd) nrrdData = detail::checkNrrdFiles(path, limits.allowExternalData);

  itk::ImageIOBase::Pointer io = ioFor(format);
  if (!io->CanReadFile(path.c_str())) {
    fail(path, std::string("not a valid ") + formatName(format) + " file");
  }
  auto reader = itk::ImageFileReader<FloatImage>::New();
  reader->SetImageIO(io);
  reader->SetFileName(path.string());
  const auto neededBytes = [&] {
    long double bytes = static_cast<long double>(io->GetComponentSize()) * io->GetNumberOfComponents();
    for (unsigned i = 0; i < io->GetNumberOfDimensions(); ++i) bytes *= static_cast<long double>(io->GetDimensions(i));
    return bytes;
  };
  const auto checkData = [&] {
    const int valueBytes = static_cast<int>(io->GetComponentSize());
    if (format == Format::Meta) {
      // MetaIO has read the header only; check the data files it is about to open.
      MetaImage* meta = static_cast<itk::MetaImageIO&>(*io).GetMetaImagePointer();
      detail::MetaImageSpec spec;
      spec.elementDataFile = meta->ElementDataFileName();
      spec.compressed = meta->CompressedData();
      spec.headerSize = meta->HeaderSize();
      std::vector<uint64_t> dims;
      for (unsigned i = 0; i < io->GetNumberOfDimensions(); ++i) dims.push_back(io->GetDimensions(i));
      detail::checkDataBytes(path, detail::checkMetaImageFiles(path, spec, dims, limits.allowExternalData), neededBytes(),
                             valueBytes);
    } else if (format == Format::Nrrd) {
      detail::checkDataBytes(path, nrrdData, neededBytes(), valueBytes);
    }
  };
  const auto readVoxels = [&](Volume& v) {
    if (!nifti) return readVoxelsInto(path, *io, v.voxels.data(), v.geometry.voxelCount());
    if (layout.voxelCount() != v.geometry.voxelCount())
      fail(path, "NIfTI header holds " + std::to_string(layout.voxelCount()) + " voxels but ITK reads a grid of " +
                     v.geometry.describe());
    detail::readNiftiVoxels(path, gzip, layout, v.voxels.data());
  };
  return runReader(path, *reader, *io, limits.maxVoxels, checkData, readVoxels);
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

// Every problem reaches the caller as an Error naming the file; ITK's own
// stderr chatter ("No Series were found" ...) would break the CLI's one-line errors.
void silenceToolkitWarnings() {
  static const bool silenced = [] {
    itk::Object::GlobalWarningDisplayOff();
    gdcm::Trace::SetDebug(false);
    gdcm::Trace::SetWarning(false);
    gdcm::Trace::SetError(false);
    return true;
  }();
  (void)silenced;
}

// ---- DICOM per-file checks ------------------------------------------------------------------

struct DicomSliceInfo {
  std::string file;
  bool hasPosition = false;
  std::array<double, 3> position{};                 // ImagePositionPatient (mm)
  std::array<double, 6> orientation{1, 0, 0, 0, 1, 0};  // ImageOrientationPatient
  int64_t frames = 1;
};

std::string elementText(const gdcm::DataSet& ds, uint16_t group, uint16_t element) {
  const gdcm::Tag tag(group, element);
  if (!ds.FindDataElement(tag)) return {};
  const gdcm::ByteValue* value = ds.GetDataElement(tag).GetByteValue();
  return value ? std::string(value->GetPointer(), value->GetLength()) : std::string();
}

// An unsigned short (US) value, stored little-endian; `fallback` when absent.
uint64_t elementUS(const gdcm::DataSet& ds, uint16_t group, uint16_t element, uint64_t fallback) {
  const std::string v = elementText(ds, group, element);
  if (v.size() < 2) return fallback;
  return static_cast<uint64_t>(static_cast<unsigned char>(v[0])) |
         (static_cast<uint64_t>(static_cast<unsigned char>(v[1])) << 8);
}

// The numbers of a decimal or integer string value such as "-10\\20.5\\30"; empty if malformed.
std::vector<double> elementNumbers(const gdcm::DataSet& ds, uint16_t group, uint16_t element) {
  std::vector<double> numbers;
  std::stringstream text(elementText(ds, group, element));
  for (std::string part; std::getline(text, part, '\\');) {
    part = trim(part);
    char* end = nullptr;
    const double v = std::strtod(part.c_str(), &end);
    if (part.empty() || *end != '\0' || !std::isfinite(v)) return {};
    numbers.push_back(v);
  }
  return numbers;
}

// Reads one file's header without its pixel data (GDCM stops at the PixelData element) and
// refuses uncompressed pixel data shorter than Rows x Columns x frames x samples x bits: ITK
// would allocate what the header declares (two 836-byte files declaring 30000x30000 took 35 s
// and 14 GB, then showed garbage).
DicomSliceInfo checkDicomFile(const std::string& file) {
  detail::checkRegularFile(file);
  gdcm::Reader reader;
  reader.SetFileName(file.c_str());
  const gdcm::Tag pixelData(0x7fe0, 0x0010);
  if (!reader.ReadUpToTag(pixelData, {pixelData})) fail(file, "not a readable DICOM file");
  const gdcm::DataSet& ds = reader.GetFile().GetDataSet();
  const gdcm::TransferSyntax syntax = reader.GetFile().GetHeader().GetDataSetTransferSyntax();
  DicomSliceInfo info;
  info.file = file;
  const std::vector<double> frames = elementNumbers(ds, 0x0028, 0x0008);
  if (frames.size() == 1 && frames[0] >= 1 && frames[0] < 1e9) info.frames = static_cast<int64_t>(frames[0]);
  // GDCM asserts (aborts the process) on a malformed Number of Frames, or on a Frame Increment
  // Pointer without one (both found in pydicom's test files).
  const bool hasFrames = ds.FindDataElement(gdcm::Tag(0x0028, 0x0008));
  if (hasFrames && (frames.size() != 1 || frames[0] < 1 || frames[0] != std::floor(frames[0])))
    fail(file, "invalid Number of Frames (0028,0008) '" + trim(elementText(ds, 0x0028, 0x0008)) + "'");
  if (!hasFrames && ds.FindDataElement(gdcm::Tag(0x0028, 0x0009)))
    fail(file, "Frame Increment Pointer (0028,0009) without Number of Frames (0028,0008); not a readable DICOM image");
  const uint64_t rows = elementUS(ds, 0x0028, 0x0010, 0), columns = elementUS(ds, 0x0028, 0x0011, 0);
  const uint64_t bits = elementUS(ds, 0x0028, 0x0100, 16), samples = elementUS(ds, 0x0028, 0x0002, 1);
  const bool native = !syntax.IsEncapsulated() && syntax != gdcm::TransferSyntax::DeflatedExplicitVRLittleEndian &&
                      syntax != gdcm::TransferSyntax::ExplicitVRBigEndian;
  // Where the pixel values start; the end of the file (-1) when there is no PixelData element
  // (float pixel data, or none: ITK's own reader refuses such a file before allocating).
  const size_t at = reader.GetStreamCurrentPosition();
  if (native && at != static_cast<size_t>(-1)) {
    const long double needed = std::ceil(static_cast<long double>(rows) * columns * info.frames * samples * bits / 8);
    std::error_code ec;
    const auto size = static_cast<uint64_t>(fs::file_size(file, ec));
    const long double available = !ec && at < size ? static_cast<long double>(size - at) : 0;
    if (needed > available) {
      std::ostringstream message;
      message.precision(0);
      message << std::fixed << "declares " << columns << "x" << rows;
      if (info.frames > 1) message << "x" << info.frames;
      message << " pixels of " << bits << " bits (" << needed << " bytes) but holds " << available
              << " bytes of pixel data";
      fail(file, message.str());
    }
  }
  const std::vector<double> position = elementNumbers(ds, 0x0020, 0x0032);
  const std::vector<double> orientation = elementNumbers(ds, 0x0020, 0x0037);
  if (position.size() == 3) {
    info.hasPosition = true;
    std::copy(position.begin(), position.end(), info.position.begin());
  }
  if (orientation.size() == 6) std::copy(orientation.begin(), orientation.end(), info.orientation.begin());
  return info;
}

// Two files at one position (a slice exported twice, two acquisitions mixed in one folder)
// would be stacked as if they were neighbours.
void checkSlicePositions(const fs::path& dir, const std::vector<DicomSliceInfo>& slices) {
  if (slices.size() < 2) return;
  for (const DicomSliceInfo& s : slices)
    if (!s.hasPosition || s.frames != 1) return;
  const auto& o = slices.front().orientation;
  const std::array<double, 3> normal{o[1] * o[5] - o[2] * o[4], o[2] * o[3] - o[0] * o[5], o[0] * o[4] - o[1] * o[3]};
  std::vector<std::pair<double, size_t>> along;
  for (size_t i = 0; i < slices.size(); ++i) {
    const auto& p = slices[i].position;
    along.emplace_back(normal[0] * p[0] + normal[1] * p[1] + normal[2] * p[2], i);
  }
  std::sort(along.begin(), along.end());
  constexpr double kSamePositionMm = 1e-3;
  for (size_t i = 1; i < along.size(); ++i) {
    if (along[i].first - along[i - 1].first >= kSamePositionMm) continue;
    std::ostringstream at;
    at << along[i].first;
    fail(dir, "slices " + fs::path(slices[along[i - 1].second].file).filename().string() + " and " +
                  fs::path(slices[along[i].second].file).filename().string() + " lie at the same position (" + at.str() +
                  " mm along the slice normal); a series directory must hold each slice once");
  }
}

// Reads single-frame slices file by file straight into `v` (ITK's series reader would hold a
// second float copy of the whole volume). False for other layouts, such as multi-frame files.
bool readSeriesSlices(const std::vector<std::string>& files, Volume& v) {
  const auto& size = v.geometry.size;
  if (static_cast<int64_t>(files.size()) != size[2]) return false;
  const int64_t sliceVoxels = size[0] * size[1];
  for (size_t k = 0; k < files.size(); ++k) {
    auto io = itk::GDCMImageIO::New();
    io->SetFileName(files[k]);
    io->ReadImageInformation();
    const bool sameSize = static_cast<int64_t>(io->GetDimensions(0)) == size[0] &&
                          static_cast<int64_t>(io->GetDimensions(1)) == size[1] &&
                          (io->GetNumberOfDimensions() < 3 || io->GetDimensions(2) == 1);
    if (!sameSize || io->GetNumberOfComponents() != 1)
      fail(files[k], "slice differs in size or type from the first slice of the series");
    readVoxelsInto(files[k], *io, v.voxels.data() + static_cast<int64_t>(k) * sliceVoxels, sliceVoxels);
  }
  return true;
}

// A FIFO or device among the files would block GDCM's scan of the directory.
void checkDirectoryEntries(const fs::path& path) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(path, ec)) {
    std::error_code statusError;
    const fs::file_status status = fs::status(entry.path(), statusError);
    if (fs::exists(status) && !fs::is_directory(status)) detail::checkRegularFile(entry.path());
  }
}

Volume readDicomFiles(const fs::path& path, const std::vector<std::string>& files, const Limits& limits);

Volume readDicomDirectory(const fs::path& path, const Limits& limits) {
  checkDirectoryEntries(path);
  std::vector<std::string> files;
  {
    // The scan keeps every file it read in memory (the whole series once more) until released.
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
    files = names->GetFileNames(uids.front());
  }
  return readDicomFiles(path, files, limits);
}

// A file that starts like DICOM Part 10 ("DICM" after the 128-byte preamble), or is named .dcm,
// and has none of the other formats' endings.
bool isDicomFile(const fs::path& path) {
  if (formatOf(path) != Format::Unknown) return false;
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return false;
  std::ifstream in(path, std::ios::binary);
  char head[132] = {};
  in.read(head, sizeof head);
  if (in.gcount() == sizeof head && std::memcmp(head + 128, "DICM", 4) == 0) return true;
  return endsWith(lowerName(path), ".dcm");  // without preamble and meta header, as some tools write it
}

// Series Instance UID (0020,000E) and Instance Number (0020,0013) of a DICOM file, from its
// header only; false if it is no readable DICOM file. Only these two values are read: GDCM skips
// the others by seeking, where reading them would allocate whatever length an element declares
// (pydicom's SC_rgb_jpeg.dcm declares 1.3 GB, so every read of a file beside it took seconds).
bool dicomSeriesOf(const fs::path& file, std::string& uid, double& instance) {
  gdcm::Reader reader;
  reader.SetFileName(file.c_str());
  if (!reader.ReadSelectedTags({gdcm::Tag(0x0020, 0x000e), gdcm::Tag(0x0020, 0x0013)})) return false;
  const gdcm::DataSet& ds = reader.GetFile().GetDataSet();
  uid = trim(elementText(ds, 0x0020, 0x000e));
  const std::vector<double> number = elementNumbers(ds, 0x0020, 0x0013);
  instance = number.size() == 1 ? number[0] : 0.0;
  return true;
}

// One DICOM file given for its series: the DICOM files of its folder with the same Series
// Instance UID are read as one volume, ordered along the slice normal (else by Instance
// Number). The folder is scanned header by header, never decoding other files' pixels: a
// broken or exotic neighbour (pydicom's test files include some that abort GDCM's decoders)
// cannot stop the series from being read.
Volume readDicomFileSeries(const fs::path& path, const Limits& limits) {
  const DicomSliceInfo given = checkDicomFile(path.string());
  std::string uid;
  double instance = 0;
  if (!dicomSeriesOf(path, uid, instance)) fail(path, "not a readable DICOM file");
  const fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  struct Member {
    std::string file;
    double instance = 0;
  };
  std::vector<Member> members{{path.string(), instance}};
  if (!uid.empty()) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      std::error_code statusError;
      if (!entry.is_regular_file(statusError)) continue;  // FIFOs, devices, folders: not opened at all
      if (fs::equivalent(entry.path(), path, statusError) || !isDicomFile(entry.path())) continue;
      std::string otherUid;
      double otherInstance = 0;
      if (dicomSeriesOf(entry.path(), otherUid, otherInstance) && otherUid == uid)
        members.push_back({entry.path().string(), otherInstance});
    }
  }
  // Neighbours that cannot be read, or that lie where a slice already taken lies (the same
  // image exported twice, in another encoding), are skipped and counted; the given file is
  // always taken.
  std::sort(members.begin() + 1, members.end(), [](const Member& a, const Member& b) { return a.file < b.file; });
  std::vector<DicomSliceInfo> slices{given};
  std::vector<Member> taken{members.front()};
  size_t skipped = 0;
  const auto samePlace = [](const DicomSliceInfo& a, const DicomSliceInfo& b) {
    if (!a.hasPosition || !b.hasPosition) return true;  // cannot be stacked by position
    double d = 0;
    for (int i = 0; i < 3; ++i) d += (a.position[i] - b.position[i]) * (a.position[i] - b.position[i]);
    return d < 1e-6;
  };
  for (size_t i = 1; i < members.size(); ++i) {
    try {
      const DicomSliceInfo info = checkDicomFile(members[i].file);
      const bool clash = info.frames != 1 || given.frames != 1 ||
                         std::any_of(slices.begin(), slices.end(), [&](const DicomSliceInfo& s) { return samePlace(s, info); });
      if (clash) {
        ++skipped;
        continue;
      }
      slices.push_back(info);
      taken.push_back(members[i]);
    } catch (const Error&) {
      ++skipped;
    }
  }
  members = taken;
  const bool positioned = std::all_of(slices.begin(), slices.end(), [](const DicomSliceInfo& s) { return s.hasPosition; });
  const auto& o = given.orientation;
  const std::array<double, 3> normal{o[1] * o[5] - o[2] * o[4], o[2] * o[3] - o[0] * o[5], o[0] * o[4] - o[1] * o[3]};
  std::vector<std::pair<double, size_t>> order;
  for (size_t i = 0; i < members.size(); ++i) {
    const auto& p = slices[i].position;
    order.emplace_back(positioned ? normal[0] * p[0] + normal[1] * p[1] + normal[2] * p[2] : members[i].instance, i);
  }
  std::stable_sort(order.begin(), order.end());
  std::vector<std::string> files;
  for (const auto& [key, i] : order) files.push_back(members[i].file);
  Volume v = readDicomFiles(path, files, limits);
  v.source = "DICOM series " + (uid.empty() ? std::string("(no Series Instance UID)") : uid) + ": " +
             std::to_string(v.geometry.size[2]) + (v.geometry.size[2] == 1 ? " slice" : " slices") +
             (static_cast<int64_t>(files.size()) == v.geometry.size[2]
                  ? std::string()
                  : " in " + std::to_string(files.size()) + (files.size() == 1 ? " file" : " files")) +
             " found in " + dir.string() +
             (skipped ? " (" + std::to_string(skipped) + " other file" + (skipped == 1 ? "" : "s") +
                            " of the series skipped: unreadable, multi-frame or at a position already taken)"
                      : "");
  return v;
}

// The JPEG and JPEG 2000 decoders inside GDCM print straight to stderr ("Unsupported JPEG data
// precision 12", "Invalid number of tiles ..."), once per attempt, which breaks the one-line
// errors. While DICOM pixel data is decoded, file descriptor 2 points to /dev/null; the failure
// still reaches the caller as an Error. Decoding is serialised so that restoring is safe; other
// threads' stderr output during a decode (rare: only DICOM is read this way) is lost.
class QuietStderr {
 public:
  QuietStderr() : lock_(mutex()) {
    std::fflush(stderr);
    saved_ = ::dup(2);
    const int devNull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (saved_ >= 0 && devNull >= 0) ::dup2(devNull, 2);
    if (devNull >= 0) ::close(devNull);
  }
  ~QuietStderr() {
    std::fflush(stderr);
    if (saved_ >= 0) {
      ::dup2(saved_, 2);
      ::close(saved_);
    }
  }
  QuietStderr(const QuietStderr&) = delete;
  QuietStderr& operator=(const QuietStderr&) = delete;

 private:
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  std::lock_guard<std::mutex> lock_;
  int saved_ = -1;
};

Volume readDicomFiles(const fs::path& path, const std::vector<std::string>& files, const Limits& limits) {
  std::vector<DicomSliceInfo> slices;
  for (const std::string& file : files) slices.push_back(checkDicomFile(file));
  checkSlicePositions(path, slices);
  const QuietStderr quiet;

  auto io = itk::GDCMImageIO::New();
  auto reader = itk::ImageSeriesReader<FloatImage>::New();
  reader->SetImageIO(io);
  reader->SetFileNames(files);
  Volume v = runReader(path, *reader, *io, limits.maxVoxels, [] {}, [&](Volume& volume) {
    if (readSeriesSlices(files, volume)) return;
    reader->Update();
    const float* data = reader->GetOutput()->GetBufferPointer();
    std::copy(data, data + volume.voxels.size(), volume.voxels.begin());
  });
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

// NIfTI-1 holds at most 32767 voxels along an axis (int16 dim); ITK 5.2 writes NIfTI-1 only.
// Larger grids are written here as NIfTI-2 (540-byte header, 64-bit dims, double sform).
constexpr int64_t kNifti1MaxDim = 32767;

bool needsNifti2(const Geometry& g) {
  return std::any_of(g.size.begin(), g.size.end(), [](int64_t n) { return n > kNifti1MaxDim; });
}

template <typename Pixel>
void writeNifti2(const Volume& volume, const std::string& file, bool gzip) {
  std::string h(544, '\0');  // header + 4-byte extension flag (no extensions)
  const auto put = [&](size_t at, auto value) { std::memcpy(&h[at], &value, sizeof value); };
  int16_t datatype = 16;
  if constexpr (std::is_same_v<Pixel, uint8_t>) datatype = 2;
  if constexpr (std::is_same_v<Pixel, int16_t>) datatype = 4;
  const Geometry& g = volume.geometry;
  put(0, int32_t{540});
  std::memcpy(&h[4], "n+2\0\r\n\032\n", 8);
  put(12, datatype);
  put(14, static_cast<int16_t>(8 * sizeof(Pixel)));
  put(16, int64_t{3});
  for (int k = 0; k < 3; ++k) put(24 + 8 * k, g.size[k]);
  for (int k = 3; k < 7; ++k) put(24 + 8 * k, int64_t{1});
  put(104, 1.0);  // qfac
  for (int k = 0; k < 3; ++k) put(112 + 8 * k, g.spacing[k]);
  put(168, int64_t{544});  // vox_offset
  put(176, 1.0);           // scl_slope
  put(348, int32_t{1});    // sform_code: scanner anatomical
  for (int r = 0; r < 3; ++r) {
    const double flip = r < 2 ? -1.0 : 1.0;  // LPS -> RAS
    for (int c = 0; c < 3; ++c) put(400 + 32 * r + 8 * c, flip * g.direction[r * 3 + c] * g.spacing[c]);
    put(400 + 32 * r + 24, flip * g.origin[r]);
  }
  put(500, static_cast<int32_t>(2));  // xyzt_units: mm
  std::vector<Pixel> data(volume.voxels.size());
  std::transform(volume.voxels.begin(), volume.voxels.end(), data.begin(), castPixel<Pixel>);
  const auto* bytes = reinterpret_cast<const char*>(data.data());
  const size_t size = data.size() * sizeof(Pixel);
  if (gzip) {
    gzFile out = gzopen(file.c_str(), "wb6");
    if (!out) fail(file, std::string("cannot write: ") + std::strerror(errno));
    bool ok = gzwrite(out, h.data(), static_cast<unsigned>(h.size())) == static_cast<int>(h.size());
    for (size_t at = 0; ok && at < size; at += 1u << 30) {
      const auto n = static_cast<unsigned>(std::min<size_t>(size - at, 1u << 30));
      ok = gzwrite(out, bytes + at, n) == static_cast<int>(n);
    }
    if (gzclose(out) != Z_OK || !ok) fail(file, "cannot write the gzip stream");
    return;
  }
  std::ofstream out(file, std::ios::binary);
  out.write(h.data(), static_cast<std::streamsize>(h.size()));
  out.write(bytes, static_cast<std::streamsize>(size));
  out.flush();
  if (!out) fail(file, std::string("cannot write: ") + std::strerror(errno));
}

// The directory a file name lives in, "." for a bare name.
fs::path directoryOf(const fs::path& path) { return path.parent_path().empty() ? fs::path(".") : path.parent_path(); }

void checkWritable(const Volume& volume, const fs::path& path, Format format) {
  const Geometry& g = volume.geometry;
  if (format == Format::Unknown || format == Format::NiftiPair || endsWith(lowerName(path), ".mhd") || endsWith(lowerName(path), ".nhdr"))
    fail(path, "cannot write this format (use .nii, .nii.gz, .mha or .nrrd)");
  if (g.size[0] < 1 || g.size[1] < 1 || g.size[2] < 1) fail(path, "cannot write an image of size " + g.describe());
  if (volume.voxels.size() != static_cast<size_t>(g.voxelCount()))
    fail(path, "volume holds " + std::to_string(volume.voxels.size()) + " voxels but its grid " + g.describe() +
                   " needs " + std::to_string(g.voxelCount()));
  const fs::path dir = directoryOf(path);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail(path, "directory " + dir.string() + " does not exist");
}

// Converts every failure inside `body` to an Error naming `path`.
template <typename Body>
auto withImageErrors(const fs::path& path, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Error&) {
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

Volume readImage(const fs::path& path, const ReadOptions& options) {
  silenceToolkitWarnings();
  const Limits limits = detail::resolveLimits(options);
  return withImageErrors(path, [&] {
    std::error_code ec;
    const fs::file_status status = fs::status(path, ec);
    if (ec && ec != std::errc::no_such_file_or_directory) fail(path, ec.message());  // e.g. permission denied
    if (!fs::exists(status)) fail(path, "no such file or directory");
    Volume v = fs::is_directory(status) ? readDicomDirectory(path, limits)
               : isDicomFile(path)         ? readDicomFileSeries(path, limits)
                                           : readImageFile(path, limits, options);
    if (v.volumes == 1 && options.volume > 0)
      fail(path, "--volume " + std::to_string(options.volume) + " is out of range: the image has 1 volume (pass 0)");
    if (options.replaceNaN)
      std::replace_if(v.voxels.begin(), v.voxels.end(), [](float x) { return std::isnan(x); }, options.nanValue);
    checkFinite(path, v);
    return v;
  });
}

void writeImage(const Volume& volume, const fs::path& path, PixelType pixelType) {
  const Format format = formatOf(path);
  checkWritable(volume, path, format);
  silenceToolkitWarnings();
  withImageErrors(path, [&] {
    // The temporary name keeps the extension: ITK picks the format and compression from it.
    common::writeFileAtomicallyWith(path, fullExtension(path), [&](const fs::path& temp) {
      if ((format == Format::Nifti || format == Format::NiftiGz) && needsNifti2(volume.geometry)) {
        const bool gzip = format == Format::NiftiGz;
        switch (pixelType) {
          case PixelType::Float32: writeNifti2<float>(volume, temp.string(), gzip); break;
          case PixelType::UInt8: writeNifti2<uint8_t>(volume, temp.string(), gzip); break;
          case PixelType::Int16: writeNifti2<int16_t>(volume, temp.string(), gzip); break;
        }
        return;
      }
      switch (pixelType) {
        case PixelType::Float32: writeWithItk<float>(volume, temp.string(), format); break;
        case PixelType::UInt8: writeWithItk<uint8_t>(volume, temp.string(), format); break;
        case PixelType::Int16: writeWithItk<int16_t>(volume, temp.string(), format); break;
      }
    });
  });
}

}  // namespace tessera::image
