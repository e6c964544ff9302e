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

#include "FileChecks.h"
#include "tessera/common/AtomicFile.h"

namespace tessera::image {

namespace fs = std::filesystem;

namespace {

using detail::dimsText;
using detail::fail;
using detail::failNonFinite;
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

enum class Format { Nifti, NiftiGz, Meta, Nrrd, Unknown };

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

// ---- reading ------------------------------------------------------------------------------

// Checks the size the header announces, before any voxel memory is allocated.
void checkImageSize(const fs::path& path, const itk::ImageIOBase& io) {
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
  detail::checkVoxelCount(path, sizes);
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
  if (format == Format::Nifti || format == Format::NiftiGz) niftiVersion = detail::checkNiftiFile(path, format == Format::NiftiGz);

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
    if (format != Format::Meta) return;
    long double bytes = static_cast<long double>(io->GetComponentSize()) * io->GetNumberOfComponents();
    for (unsigned i = 0; i < io->GetNumberOfDimensions(); ++i) bytes *= static_cast<long double>(io->GetDimensions(i));
    detail::checkMetaImageData(path, bytes);
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

// Every problem reaches the caller as an Error naming the file; ITK's own
// stderr chatter ("No Series were found" ...) would break the CLI's one-line errors.
void silenceToolkitWarnings() {
  static const bool silenced = [] {
    itk::Object::GlobalWarningDisplayOff();
    return true;
  }();
  (void)silenced;
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

// The directory a file name lives in, "." for a bare name.
fs::path directoryOf(const fs::path& path) { return path.parent_path().empty() ? fs::path(".") : path.parent_path(); }

void checkWritable(const Volume& volume, const fs::path& path, Format format) {
  const Geometry& g = volume.geometry;
  if (format == Format::Unknown || endsWith(lowerName(path), ".mhd") || endsWith(lowerName(path), ".nhdr"))
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

Volume readImage(const fs::path& path) {
  silenceToolkitWarnings();
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
  silenceToolkitWarnings();
  withImageErrors(path, [&] {
    // The temporary name keeps the extension: ITK picks the format and compression from it.
    common::writeFileAtomicallyWith(path, fullExtension(path), [&](const fs::path& temp) {
      switch (pixelType) {
        case PixelType::Float32: writeWithItk<float>(volume, temp.string(), format); break;
        case PixelType::UInt8: writeWithItk<uint8_t>(volume, temp.string(), format); break;
        case PixelType::Int16: writeWithItk<int16_t>(volume, temp.string(), format); break;
      }
    });
  });
}

}  // namespace tessera::image
