// Hostile and broken image files (issue 9): every one must end in a one-line Error naming the
// file, before the reader opens a file it should not or allocates what the header only claims.
//  - external data files: MetaImage ElementDataFile (name, LIST, pattern) and NRRD data file
//    (name, LIST, pattern) stay in the header's folder and are regular files;
//  - declared sizes the bytes cannot hold (NIfTI, .nii.gz, MetaImage, NRRD, DICOM) and the voxel
//    limit are refused before allocating;
//  - what readers silently misread (missing pattern files, an empty LIST, two DICOM slices at one
//    position, a zero step, printf conversions in a pattern) is an error;
//  - peak memory while reading is about one float copy of the image.
// Every fixture is written here, in a temporary folder.

#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "TestSupport.h"
#include "itkGDCMImageIO.h"
#include "itkImage.h"
#include "itkImageFileWriter.h"
#include "itkMetaDataObject.h"
#include "tessera/image/ImageIO.h"

namespace tessera::image {
namespace {

namespace fs = std::filesystem;
using test::contains;
using test::errorOf;
using test::grid;
using test::readBytes;
using test::runPython;
using test::TempDir;
using test::writeBytes;

// The tessera::Error `body` throws: code and message (one line, naming `file`).
struct Failure {
  ErrorCode code = ErrorCode::Internal;
  std::string message;
};

template <typename Body>
Failure failureOf(Body&& body) {
  try {
    body();
  } catch (const Error& e) {
    return {e.code(), e.what()};
  }
  ADD_FAILURE() << "expected a tessera::Error";
  return {};
}

void expectRefused(const fs::path& file, const std::string& problem, const ReadOptions& options = {},
                   ErrorCode code = ErrorCode::BadImage) {
  const Failure f = failureOf([&] { readImage(file, options); });
  EXPECT_EQ(f.code, code) << f.message;
  EXPECT_TRUE(contains(f.message, file.string() + ": ")) << f.message;
  EXPECT_TRUE(contains(f.message, problem)) << "expected '" << problem << "' in: " << f.message;
  EXPECT_EQ(f.message.find('\n'), std::string::npos) << "message must be one line: " << f.message;
}

// Sets an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (old_.empty())
      ::unsetenv(name_);
    else
      ::setenv(name_, old_.c_str(), 1);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::string old_;
};

// ---- fixtures -------------------------------------------------------------------------------

std::string metaHeader(const std::string& dims, const std::string& type, const std::string& dataFile) {
  const int rank = static_cast<int>(std::count(dims.begin(), dims.end(), ' ')) + 1;
  return "ObjectType = Image\nNDims = " + std::to_string(rank) + "\nDimSize = " + dims + "\nElementType = " + type +
         "\nElementDataFile = " + dataFile + "\n";
}

std::string nrrdHeader(const std::string& sizes, const std::string& type, const std::string& dataFile,
                       const std::string& encoding = "raw") {
  const int rank = static_cast<int>(std::count(sizes.begin(), sizes.end(), ' ')) + 1;
  return "NRRD0004\ntype: " + type + "\ndimension: " + std::to_string(rank) + "\nsizes: " + sizes +
         "\nencoding: " + encoding + "\ndata file: " + dataFile + "\n";
}

std::string bytesFrom(int first, int count) {
  std::string s;
  for (int i = 0; i < count; ++i) s += static_cast<char>(first + i);
  return s;
}

// A single-file NIfTI-1 header (348 bytes + 4-byte extension flag).
std::string niftiHeader(std::array<int16_t, 3> size, int16_t datatype, int16_t bitpix, float slope = 1.0f,
                        float inter = 0.0f) {
  std::string h(352, '\0');
  const auto put = [&](size_t offset, auto value) { std::memcpy(&h[offset], &value, sizeof value); };
  put(0, int32_t{348});
  const std::array<int16_t, 8> dim{3, size[0], size[1], size[2], 1, 1, 1, 1};
  for (size_t i = 0; i < 8; ++i) put(40 + 2 * i, dim[i]);
  put(70, datatype);
  put(72, bitpix);
  for (size_t i = 0; i < 8; ++i) put(76 + 4 * i, 1.0f);  // pixdim
  put(108, 352.0f);                                         // vox_offset
  put(112, slope);
  put(116, inter);
  put(252, int16_t{1});  // qform_code: scanner
  std::memcpy(&h[344], "n+1\0", 4);
  return h;
}

// One gzip member holding `data`.
std::string gzipMember(const std::string& data) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, data.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// A .nii.gz whose header declares `size` float voxels, followed by `zeroBytes` of real zeros
// (gzip members of 16 MiB each: a valid stream, 1028:1 compressed, written in milliseconds).
void writeZeroNiftiGz(const fs::path& file, std::array<int16_t, 3> size, int64_t zeroBytes) {
  std::ofstream out(file, std::ios::binary);
  out << gzipMember(niftiHeader(size, 16, 32));
  constexpr int64_t kChunk = int64_t{16} << 20;
  const std::string chunk = gzipMember(std::string(kChunk, '\0'));
  for (int64_t left = zeroBytes; left > 0; left -= kChunk)
    out << (left >= kChunk ? chunk : gzipMember(std::string(static_cast<size_t>(left), '\0')));
}

constexpr int kColumns = 4, kRows = 3;

// One MR slice per z position, written with GDCM as a scanner would (see DicomTest.cpp).
void writeDicomSlices(const fs::path& dir, const std::vector<double>& positions, int columns = kColumns,
                      int rows = kRows, const std::string& prefix = "s") {
  using Image = itk::Image<int16_t, 3>;
  const std::string series = "1.2.826.0.1.3680043.2.1125.99.9.1";
  for (size_t k = 0; k < positions.size(); ++k) {
    auto image = Image::New();
    Image::RegionType region;
    region.SetSize({static_cast<itk::SizeValueType>(columns), static_cast<itk::SizeValueType>(rows), 1});
    image->SetRegions(region);
    Image::SpacingType spacing;
    spacing.Fill(1.0);
    image->SetSpacing(spacing);
    Image::PointType origin;
    origin[0] = -10.0;
    origin[1] = 20.0;
    origin[2] = positions[k];
    image->SetOrigin(origin);
    image->Allocate();
    int16_t* pixels = image->GetBufferPointer();
    for (int i = 0; i < columns * rows; ++i) pixels[i] = static_cast<int16_t>(100 * k + i % 97);
    itk::MetaDataDictionary& tags = image->GetMetaDataDictionary();
    const auto set = [&](const std::string& key, const std::string& value) {
      itk::EncapsulateMetaData<std::string>(tags, key, value);
    };
    set("0008|0016", "1.2.840.10008.5.1.4.1.1.4");
    set("0008|0018", series + "." + prefix + std::to_string(k + 1));
    set("0008|0060", "MR");
    set("0028|0004", "MONOCHROME2");
    set("0020|000d", "1.2.826.0.1.3680043.2.1125.99.9");
    set("0020|000e", series);
    set("0020|0013", std::to_string(k + 1));
    auto io = itk::GDCMImageIO::New();
    io->KeepOriginalUIDOn();
    auto writer = itk::ImageFileWriter<Image>::New();
    writer->SetImageIO(io);
    writer->SetInput(image);
    writer->SetFileName((dir / (prefix + std::to_string(k + 1) + ".dcm")).string());
    writer->Update();
  }
}

// Rewrites Rows and Columns of a DICOM file in place (explicit or implicit VR little endian),
// leaving its pixel data as it is.
void declareDicomSize(const fs::path& file, uint16_t columns, uint16_t rows) {
  std::string bytes = readBytes(file);
  const auto patch = [&](uint16_t element, uint16_t value) {
    const std::string tag{'\x28', '\x00', static_cast<char>(element), '\x00'};
    for (const std::string& vr : {std::string("US\x02\x00", 4), std::string("\x02\x00\x00\x00", 4)}) {
      const size_t at = bytes.find(tag + vr);
      if (at == std::string::npos) continue;
      std::memcpy(&bytes[at + 8], &value, 2);
      return;
    }
    ADD_FAILURE() << "no (0028," << element << ") in " << file;
  };
  patch(0x10, rows);
  patch(0x11, columns);
  writeBytes(file, bytes);
}

// ---- external data files ----------------------------------------------------------------------

class HostileDataFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir / "case");
    fs::create_directories(dir / "outside");
    writeBytes(dir / "outside" / "secret.raw", bytesFrom(40, 32));
    writeBytes(dir / "case" / "data.raw", bytesFrom(1, 32));
  }
  fs::path at(const std::string& name) const { return dir / "case" / name; }
  TempDir dir;
};

TEST_F(HostileDataFiles, MetaImageDataFileInItsFolderReads) {
  // Guards the refusals below: the same headers with a data file beside them are valid.
  writeBytes(at("ok.mhd"), metaHeader("8 4", "MET_UCHAR", "data.raw"));
  EXPECT_EQ(readImage(at("ok.mhd")).voxels[31], 32.0f);
  fs::create_directories(at("raw"));
  fs::copy_file(at("data.raw"), at("raw/deep.raw"));
  writeBytes(at("deep.mhd"), metaHeader("8 4", "MET_UCHAR", "raw/deep.raw"));
  EXPECT_EQ(readImage(at("deep.mhd")).voxels[0], 1.0f);
  fs::create_symlink("data.raw", at("alias.raw"));  // a link that stays inside is fine
  writeBytes(at("alias.mhd"), metaHeader("8 4", "MET_UCHAR", "alias.raw"));
  EXPECT_EQ(readImage(at("alias.mhd")).voxels[0], 1.0f);
}

TEST_F(HostileDataFiles, MetaImageAbsolutePathIsRefused) {
  writeBytes(at("passwd.mha"), metaHeader("8 4", "MET_UCHAR", "/etc/passwd"));
  expectRefused(at("passwd.mha"), "data file '/etc/passwd' is an absolute path");
  // MetaIO also takes ':' as the separator.
  writeBytes(at("colon.mha"), "ObjectType = Image\nNDims = 2\nDimSize = 8 4\nElementType = MET_UCHAR\n"
                              "ElementDataFile : /etc/passwd\n");
  expectRefused(at("colon.mha"), "is an absolute path");
  writeBytes(at("home.mhd"), metaHeader("8 4", "MET_UCHAR", "~/.ssh/id_rsa"));
  expectRefused(at("home.mhd"), "is an absolute path");
}

TEST_F(HostileDataFiles, MetaImageDataFileOutsideTheFolderIsRefused) {
  writeBytes(at("up.mhd"), metaHeader("8 4", "MET_UCHAR", "../outside/secret.raw"));
  expectRefused(at("up.mhd"), "data file '../outside/secret.raw' lies outside the header's folder");
  writeBytes(at("sneaky.mhd"), metaHeader("8 4", "MET_UCHAR", "raw/../../outside/secret.raw"));
  expectRefused(at("sneaky.mhd"), "lies outside the header's folder");
}

TEST_F(HostileDataFiles, SymbolicLinkLeavingTheFolderIsRefused) {
  fs::create_symlink(dir / "outside" / "secret.raw", at("link.raw"));
  writeBytes(at("link.mhd"), metaHeader("8 4", "MET_UCHAR", "link.raw"));
  expectRefused(at("link.mhd"), "resolves to " + fs::canonical(dir / "outside" / "secret.raw").string());
  fs::create_directory_symlink(dir / "outside", at("linkdir"));
  writeBytes(at("linkdir.nhdr"), nrrdHeader("8 4", "uint8", "linkdir/secret.raw"));
  expectRefused(at("linkdir.nhdr"), "outside the header's folder");
}

TEST_F(HostileDataFiles, DataFilesMustBeRegularFiles) {
  fs::create_directory(at("slices"));
  writeBytes(at("dir.mhd"), metaHeader("4 4", "MET_UCHAR", "slices"));
  expectRefused(at("dir.mhd"), "data file 'slices' is not a regular file (a directory)");
  ASSERT_EQ(::mkfifo(at("pipe.raw").c_str(), 0600), 0);  // opening it would block forever
  writeBytes(at("fifo.mhd"), metaHeader("4 4", "MET_UCHAR", "pipe.raw"));
  expectRefused(at("fifo.mhd"), "is not a regular file (a FIFO)");
  writeBytes(at("fifo.nhdr"), nrrdHeader("4 4", "uint8", "pipe.raw"));
  expectRefused(at("fifo.nhdr"), "is not a regular file (a FIFO)");
  fs::create_symlink("/dev/zero", at("zero.raw"));
  writeBytes(at("zero.mhd"), metaHeader("4 4", "MET_UCHAR", "zero.raw"));
  expectRefused(at("zero.mhd"), "is not a regular file (a character device)");
  // Allowing external data does not allow devices, FIFOs or directories.
  ReadOptions external;
  external.allowExternalData = true;
  expectRefused(at("fifo.mhd"), "(a FIFO)", external);
  writeBytes(at("dev.mhd"), metaHeader("4 4", "MET_UCHAR", "/dev/zero"));
  expectRefused(at("dev.mhd"), "(a character device)", external);
}

TEST_F(HostileDataFiles, TheImageFileItselfMustBeARegularFile) {
  ASSERT_EQ(::mkfifo(at("scan.nii").c_str(), 0600), 0);
  expectRefused(at("scan.nii"), "not a regular file (a FIFO)");
  ASSERT_EQ(::mkfifo(at("scan.mha").c_str(), 0600), 0);
  expectRefused(at("scan.mha"), "not a regular file (a FIFO)");
}

TEST_F(HostileDataFiles, ExternalDataWhenTheUserAllowsIt) {
  writeBytes(at("up.mhd"), metaHeader("8 4", "MET_UCHAR", "../outside/secret.raw"));
  writeBytes(at("abs.nhdr"), nrrdHeader("8 4", "uint8", (dir / "outside" / "secret.raw").string()));
  ReadOptions external;
  external.allowExternalData = true;
  EXPECT_EQ(readImage(at("up.mhd"), external).voxels[0], 40.0f);
  EXPECT_EQ(readImage(at("abs.nhdr"), external).voxels[31], 71.0f);
  {
    const ScopedEnv allow("TESSERA_ALLOW_EXTERNAL_DATA", "1");
    EXPECT_EQ(readImage(at("up.mhd")).voxels[0], 40.0f);
  }
  expectRefused(at("up.mhd"), "outside the header's folder");
  const ScopedEnv typo("TESSERA_ALLOW_EXTERNAL_DATA", "yes");
  const Failure f = failureOf([&] { readImage(at("up.mhd")); });
  EXPECT_EQ(f.code, ErrorCode::Config) << f.message;
  EXPECT_TRUE(contains(f.message, "TESSERA_ALLOW_EXTERNAL_DATA=yes")) << f.message;
}

TEST_F(HostileDataFiles, MetaImageListNamesOnlyFilesInTheFolder) {
  writeBytes(at("s1.raw"), bytesFrom(1, 16));
  writeBytes(at("s2.raw"), bytesFrom(17, 16));
  writeBytes(at("list.mhd"), metaHeader("4 4 2", "MET_UCHAR", "LIST") + "s1.raw\ns2.raw\n");
  const Volume v = readImage(at("list.mhd"));
  EXPECT_EQ(v.at(0, 0, 1), 17.0f);
  EXPECT_EQ(v.at(3, 3, 1), 32.0f);
  writeBytes(at("list-out.mhd"), metaHeader("4 4 2", "MET_UCHAR", "LIST") + "s1.raw\n../outside/secret.raw\n");
  expectRefused(at("list-out.mhd"), "data file '../outside/secret.raw' lies outside");
  writeBytes(at("list-abs.mhd"), metaHeader("4 4 2", "MET_UCHAR", "LIST 2D") + "/etc/passwd\ns2.raw\n");
  expectRefused(at("list-abs.mhd"), "data file '/etc/passwd' is an absolute path");
  // An empty name would make MetaIO read the folder itself (and index before the string).
  writeBytes(at("list-empty.mhd"), metaHeader("4 4 2", "MET_UCHAR", "LIST") + "s1.raw\n\n");
  expectRefused(at("list-empty.mhd"), "names an empty data file");
}

TEST_F(HostileDataFiles, MetaImageListWithTooFewFilesIsRefused) {
  // MetaIO leaves the slices it finds no name for as they were: zeros or garbage, exit 0.
  writeBytes(at("none.mhd"), metaHeader("4 4 3", "MET_UCHAR", "LIST"));
  expectRefused(at("none.mhd"), "ElementDataFile LIST names 0 data file(s); the image needs 3");
  writeBytes(at("s1.raw"), bytesFrom(1, 16));
  writeBytes(at("short.mhd"), metaHeader("4 4 3", "MET_UCHAR", "LIST") + "s1.raw\ns1.raw\ns1.raw");  // no final newline
  expectRefused(at("short.mhd"), "names 2 data file(s); the image needs 3");
}

TEST_F(HostileDataFiles, MetaImagePatternNeedsEveryFileInTheFolder) {
  for (int k = 1; k <= 3; ++k) writeBytes(at("slice" + std::to_string(k) + ".raw"), bytesFrom(16 * k, 16));
  writeBytes(at("pattern.mhd"), metaHeader("4 4 3", "MET_UCHAR", "slice%d.raw 1 3 1"));
  EXPECT_EQ(readImage(at("pattern.mhd")).at(0, 0, 2), 48.0f);
  writeBytes(at("default.mhd"), metaHeader("4 4 3", "MET_UCHAR", "slice%d.raw"));  // 1 .. 3 step 1
  EXPECT_EQ(readImage(at("default.mhd")).at(0, 0, 1), 32.0f);
  // A missing file: MetaIO printed a warning and returned garbage with exit 0.
  writeBytes(at("missing.mhd"), metaHeader("4 4 4", "MET_UCHAR", "slice%d.raw 1 4 1"));
  expectRefused(at("missing.mhd"), "data file 'slice4.raw' does not exist");
  // Fewer files than slices, or more: the rest of the buffer would be uninitialised (or overrun).
  writeBytes(at("few.mhd"), metaHeader("4 4 3", "MET_UCHAR", "slice%d.raw 1 2 1"));
  expectRefused(at("few.mhd"), "names 2 data file(s); the image has 3 slices");
  writeBytes(at("up.mhd"), metaHeader("4 4 1", "MET_UCHAR", "../outside/secret%d.raw 1 1 1"));
  expectRefused(at("up.mhd"), "lies outside the header's folder");
}

TEST_F(HostileDataFiles, MetaImagePatternsThatCrashedTheReaderAreRefused) {
  for (int k = 1; k <= 3; ++k) writeBytes(at("slice" + std::to_string(k) + ".raw"), bytesFrom(16 * k, 16));
  // A step of 0 (given, or computed by MetaIO from "min max") divided by zero: SIGFPE.
  writeBytes(at("step0.mhd"), metaHeader("4 4 3", "MET_UCHAR", "slice%d.raw 1 3 0"));
  expectRefused(at("step0.mhd"), "in steps of 0");
  writeBytes(at("minmax.mhd"), metaHeader("4 4 3", "MET_UCHAR", "slice%d.raw 1 3"));
  expectRefused(at("minmax.mhd"), "in steps of 0");
  // The pattern went to sprintf as a format: "%s%n" crashed the process (SIGSEGV).
  writeBytes(at("format.mhd"), metaHeader("4 4 3", "MET_UCHAR", "%s%s%s%n 1 3 1"));
  expectRefused(at("format.mhd"), "may hold only one %d");
  writeBytes(at("two.mhd"), metaHeader("4 4 3", "MET_UCHAR", "slice%d%d.raw 1 3 1"));
  expectRefused(at("two.mhd"), "must hold exactly one %d");
  writeBytes(at("wide.mhd"), metaHeader("4 4 3", "MET_UCHAR", "slice%0999d.raw 1 3 1"));  // overran MetaIO's buffer
  expectRefused(at("wide.mhd"), "makes too long a file name");
}

TEST_F(HostileDataFiles, NrrdDataFileStaysInTheFolder) {
  writeBytes(at("ok.nhdr"), nrrdHeader("8 4", "uint8", "data.raw"));
  EXPECT_EQ(readImage(at("ok.nhdr")).voxels[31], 32.0f);
  writeBytes(at("up.nhdr"), nrrdHeader("8 4", "uint8", "../outside/secret.raw"));
  expectRefused(at("up.nhdr"), "data file '../outside/secret.raw' lies outside the header's folder");
  writeBytes(at("abs.nhdr"), nrrdHeader("8 4", "uint8", "/etc/passwd"));
  expectRefused(at("abs.nhdr"), "data file '/etc/passwd' is an absolute path");
  // "datafile:" is the same field, in any case; a .nrrd may name a data file too.
  writeBytes(at("alias.nhdr"), "NRRD0004\ntype: uint8\ndimension: 2\nsizes: 8 4\nencoding: raw\nDataFile: /etc/passwd\n");
  expectRefused(at("alias.nhdr"), "is an absolute path");
  writeBytes(at("attached.nrrd"), nrrdHeader("8 4", "uint8", "../outside/secret.raw") + "\n");
  expectRefused(at("attached.nrrd"), "lies outside the header's folder");
}

TEST_F(HostileDataFiles, NrrdListAndPatternFormsAreChecked) {
  writeBytes(at("s1.raw"), bytesFrom(1, 16));
  writeBytes(at("s2.raw"), bytesFrom(17, 16));
  writeBytes(at("list.nhdr"), nrrdHeader("4 4 2", "uint8", "LIST") + "s1.raw\ns2.raw\n");
  EXPECT_EQ(readImage(at("list.nhdr")).at(0, 0, 1), 17.0f);
  writeBytes(at("list-out.nhdr"), nrrdHeader("4 4 2", "uint8", "LIST") + "s1.raw\n../outside/secret.raw\n");
  expectRefused(at("list-out.nhdr"), "data file '../outside/secret.raw' lies outside");
  writeBytes(at("pattern.nhdr"), nrrdHeader("4 4 2", "uint8", "s%d.raw 1 2 1"));
  EXPECT_EQ(readImage(at("pattern.nhdr")).at(3, 3, 1), 32.0f);
  writeBytes(at("pattern-out.nhdr"), nrrdHeader("4 4 1", "uint8", "../outside/secret%d.raw 1 1 1"));
  expectRefused(at("pattern-out.nhdr"), "lies outside the header's folder");
  // teem checks only the first conversion; the rest went to sprintf.
  writeBytes(at("format.nhdr"), nrrdHeader("4 4 2", "uint8", "s%d%s.raw 1 2 1"));
  expectRefused(at("format.nhdr"), "may hold only one %d");
}

// ---- declared sizes the bytes cannot hold ------------------------------------------------------

TEST(HostileSizes, VoxelLimitRefusesBeforeReadingAnyData) {
  // The 4 MB .nii.gz declaring 1024^3 floats (4 GiB of real zeros): 49 s and 12.6 GB before.
  TempDir dir;
  const fs::path file = dir / "bomb.nii.gz";
  writeZeroNiftiGz(file, {1024, 1024, 1024}, int64_t{4} << 30);
  EXPECT_LT(fs::file_size(file), 5u << 20);
  expectRefused(file, "image is too large: dimensions 1024x1024x1024 (1073741824 voxels) exceed the limit of 536870912",
                {}, ErrorCode::TooLarge);
  // Lowering the limit refuses smaller images the same way, for every format.
  writeImage(Volume(grid(10, 10, 10), 1.0f), dir / "small.mha");
  ReadOptions tight;
  tight.maxVoxels = 999;
  expectRefused(dir / "small.mha", "exceed the limit of 999 voxels", tight, ErrorCode::TooLarge);
  tight.maxVoxels = 1000;
  EXPECT_EQ(readImage(dir / "small.mha", tight).voxels.size(), 1000u);
  const ScopedEnv env("TESSERA_MAX_VOXELS", "500");
  expectRefused(dir / "small.mha", "exceed the limit of 500 voxels", {}, ErrorCode::TooLarge);
  const ScopedEnv bad("TESSERA_MAX_VOXELS", "lots");
  EXPECT_EQ(failureOf([&] { readImage(dir / "small.mha"); }).code, ErrorCode::Config);
}

TEST(HostileSizes, DicomSeriesTotalCountsAgainstTheLimit) {
  TempDir dir;
  writeDicomSlices(dir.path(), {0, 1, 2, 3});
  ReadOptions tight;
  tight.maxVoxels = kColumns * kRows * 3;  // one slice fits, the series does not
  expectRefused(dir.path(), "dimensions 4x3x4", tight, ErrorCode::TooLarge);
}

TEST(HostileSizes, GzipTooSmallForItsHeaderIsRefusedWithoutInflating) {
  // 512^3 floats (512 MiB) cannot come out of a few hundred bytes: deflate expands at most 1032:1.
  TempDir dir;
  const fs::path file = dir / "claims.nii.gz";
  writeBytes(file, gzipMember(niftiHeader({512, 512, 512}, 16, 32) + std::string(4096, '\0')));
  expectRefused(file, "more than a " + std::to_string(fs::file_size(file)) + "-byte gzip file can hold");
  // Within the bound the stream is inflated and counted: still truncated, never allocated first.
  writeZeroNiftiGz(dir / "short.nii.gz", {256, 256, 256}, int64_t{32} << 20);
  expectRefused(dir / "short.nii.gz", "file is truncated");
}

TEST(HostileSizes, GzipGoingOnFarPastItsDataIsRefused) {
  // 8 voxels declared, 64 MiB inflated after them: reading to the CRC would take seconds per GB.
  TempDir dir;
  std::ofstream(dir / "tail.nii.gz", std::ios::binary)
      << gzipMember(niftiHeader({2, 2, 2}, 16, 32) + std::string(32, '\0') + std::string(size_t{64} << 20, '\0'));
  expectRefused(dir / "tail.nii.gz", "bytes past the voxel data the header declares");
}

TEST(HostileSizes, MetaImageAndNrrdDataShorterThanDeclared) {
  TempDir dir;
  // 4096 x 4096 x 16 bytes declared (1 GiB as float), 32 bytes there.
  writeBytes(dir / "data.raw", bytesFrom(1, 32));
  writeBytes(dir / "short.mhd", metaHeader("4096 4096 16", "MET_UCHAR", "data.raw"));
  expectRefused(dir / "short.mhd", "file is truncated: the header needs 268435456 bytes");
  writeBytes(dir / "short.nhdr", nrrdHeader("4096 4096 16", "uint8", "data.raw"));
  expectRefused(dir / "short.nhdr", "file is truncated: the header needs 268435456 bytes");
  writeBytes(dir / "attached.nrrd",
             "NRRD0004\ntype: float\ndimension: 3\nsizes: 512 512 512\nendian: little\nencoding: raw\n\n" + std::string(64, '\0'));
  expectRefused(dir / "attached.nrrd", "file is truncated");
  writeBytes(dir / "zip.nrrd", "NRRD0004\ntype: float\ndimension: 3\nsizes: 512 512 512\nendian: little\nencoding: gzip\n\n" +
                                   gzipMember(std::string(4096, '\0')));
  expectRefused(dir / "zip.nrrd", "file is truncated");
  writeBytes(dir / "text.nrrd", "NRRD0004\ntype: float\ndimension: 3\nsizes: 512 512 512\nencoding: ascii\n\n1 2 3\n");
  expectRefused(dir / "text.nrrd", "file is truncated");
  // LIST: each file must hold its slice.
  writeBytes(dir / "s1.raw", bytesFrom(1, 16));
  writeBytes(dir / "s2.raw", bytesFrom(1, 3));
  writeBytes(dir / "list.mhd", metaHeader("4 4 2", "MET_UCHAR", "LIST") + "s1.raw\ns2.raw\n");
  expectRefused(dir / "list.mhd", "file is truncated");
}

TEST(HostileSizes, DicomPixelDataShorterThanRowsTimesColumns) {
  // Two ~1 KB files declaring 30000 x 30000: ITK allocated 7.2 GB, then ran out of memory.
  TempDir dir;
  writeDicomSlices(dir.path(), {0, 2});
  for (const char* name : {"s1.dcm", "s2.dcm"}) declareDicomSize(dir / name, 30000, 30000);
  const Failure f = failureOf([&] { readImage(dir.path()); });
  EXPECT_EQ(f.code, ErrorCode::BadImage) << f.message;
  EXPECT_TRUE(contains(f.message, (dir / "s1.dcm").string() + ": declares 30000x30000 pixels of 16 bits (1800000000 bytes) but holds 24 bytes")) << f.message;
  EXPECT_EQ(f.message.find('\n'), std::string::npos) << f.message;
  // Under the voxel limit the per-file check is what stops it.
  TempDir small;
  writeDicomSlices(small.path(), {0, 2});
  for (const char* name : {"s1.dcm", "s2.dcm"}) declareDicomSize(small / name, 2000, 2000);
  EXPECT_TRUE(contains(errorOf([&] { readImage(small.path()); }), "declares 2000x2000 pixels of 16 bits"));
}

// ---- silently misread -------------------------------------------------------------------------

TEST(HostileDicom, TwoSlicesAtOnePositionAreNotStacked) {
  TempDir dir;
  writeDicomSlices(dir.path(), {0, 2, 2, 4});
  const Failure f = failureOf([&] { readImage(dir.path()); });
  EXPECT_EQ(f.code, ErrorCode::BadImage);
  EXPECT_TRUE(contains(f.message, dir.path().string() + ": slices ")) << f.message;
  EXPECT_TRUE(contains(f.message, "lie at the same position (2 mm along the slice normal)")) << f.message;
  // A slice exported twice under another name.
  TempDir twice;
  writeDicomSlices(twice.path(), {0, 2, 4});
  writeDicomSlices(twice.path(), {4}, kColumns, kRows, "copy");
  EXPECT_TRUE(contains(errorOf([&] { readImage(twice.path()); }), "lie at the same position"));
  // Distinct positions read as before.
  TempDir fine;
  writeDicomSlices(fine.path(), {0, 2, 4});
  const Volume v = readImage(fine.path());
  EXPECT_EQ(v.geometry.size, (std::array<int64_t, 3>{kColumns, kRows, 3}));
  EXPECT_EQ(v.at(1, 0, 2), 201.0f);
}

TEST(HostileDicom, FifoInTheSeriesFolderIsRefusedNotWaitedOn) {
  TempDir dir;
  writeDicomSlices(dir.path(), {0, 2});
  ASSERT_EQ(::mkfifo((dir / "s3.dcm").c_str(), 0600), 0);  // GDCM's scan would block on it
  EXPECT_TRUE(contains(errorOf([&] { readImage(dir.path()); }), "s3.dcm: not a regular file (a FIFO)"));
}

// ---- our NIfTI decoder against an independent reader ------------------------------------------

TEST(NiftiDecoder, EveryScalarTypeScaledAndByteSwappedMatchesNibabel) {
  TempDir dir;
  std::string out;
  // nibabel writes no scaling for data already in the file type, so the slope and intercept
  // are patched into the header (offsets 112 and 116, in the file's byte order) afterwards.
  ASSERT_TRUE(runPython("import sys, os, gzip, struct, numpy as np, nibabel as nib\n"
                        "d = sys.argv[1]\n"
                        "for t in ('u1', 'i1', 'i2', 'u2', 'i4', 'u4', 'i8', 'u8', 'f4', 'f8'):\n"
                        "  for e in ('<', '>'):\n"
                        "    a = (np.arange(60).reshape(3, 4, 5) * 7 - (0 if t[0] == 'u' else 150)).astype(e + t)\n"
                        "    for s, i in ((1.0, 0.0), (2.5, -3.0)):\n"
                        "      h = nib.Nifti1Header(endianness=e); h.set_data_dtype(a.dtype)\n"
                        "      n = os.path.join(d, '%s%s%g.nii' % (t, 'be' if e == '>' else 'le', s))\n"
                        "      nib.save(nib.Nifti1Image(a, np.eye(4), header=h), n)\n"
                        "      b = bytearray(open(n, 'rb').read()); struct.pack_into(e + 'ff', b, 112, s, i)\n"
                        "      open(n, 'wb').write(b); open(n + '.gz', 'wb').write(gzip.compress(bytes(b)))\n"
                        "      v = nib.load(n).get_fdata()\n"
                        "      for f in (n, n + '.gz'):\n"
                        "        print(os.path.basename(f), repr(float(v[1, 2, 3])), repr(float(v[2, 0, 4])),\n"
                        "              repr(float(np.abs(v).sum())))\n",
                        dir.path(), out))
      << out;
  std::istringstream lines(out);
  int checked = 0;
  for (std::string name; lines >> name;) {
    double a = 0, b = 0, sum = 0;
    lines >> a >> b >> sum;
    const Volume v = readImage(dir / name);
    double ours = 0;
    for (const float x : v.voxels) ours += std::abs(x);
    EXPECT_NEAR(ours, sum, sum * 1e-6) << name;
    EXPECT_NEAR(v.at(1, 2, 3), a, std::abs(a) * 1e-6 + 1e-6) << name;
    EXPECT_NEAR(v.at(2, 0, 4), b, std::abs(b) * 1e-6 + 1e-6) << name;
    ++checked;
  }
  EXPECT_EQ(checked, 80) << out;
}

TEST(NiftiDecoder, ValueSplitAcrossReadsAndNaNPositions) {
  // vox_offset 353 puts every float across the 1 MiB read boundaries at an odd offset.
  TempDir dir;
  std::string h = niftiHeader({128, 64, 33}, 16, 32);
  const float offset = 353.0f;
  std::memcpy(&h[108], &offset, 4);
  std::vector<float> values(size_t{128} * 64 * 33);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i % 1000) * 0.5f;
  const std::string data(reinterpret_cast<const char*>(values.data()), values.size() * 4);
  writeBytes(dir / "odd.nii", h + std::string(1, '\0') + data);
  const Volume v = readImage(dir / "odd.nii");
  EXPECT_EQ(v.voxels, values);
  values[70000] = std::nanf("");
  writeBytes(dir / "nan.nii.gz", gzipMember(h + std::string(1, '\0') +
                                            std::string(reinterpret_cast<const char*>(values.data()), values.size() * 4)));
  expectRefused(dir / "nan.nii.gz", "contains NaN at voxel (112,34,8)");
}

// ---- peak memory: one float copy of the image -------------------------------------------------

int64_t statusKb(const std::string& field) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.compare(0, field.size() + 1, field + ":") == 0) return std::atoll(line.c_str() + field.size() + 1);
  return -1;
}

// Peak growth of resident memory while `body` runs, in bytes; -1 when the kernel cannot reset the
// peak (VmHWM) for us.
template <typename Body>
int64_t peakGrowth(Body&& body) {
  { std::ofstream("/proc/self/clear_refs") << "5"; }
  const int64_t before = statusKb("VmRSS");
  if (statusKb("VmHWM") > before + 1024) return -1;
  body();
  return (statusKb("VmHWM") - before) * 1024;
}

TEST(ReadMemory, PeakIsAboutOneFloatCopy) {
  // 256^3 float voxels = 64 MiB. Before: NIfTI 3 copies (library, ITK, Volume), MetaImage and
  // DICOM 2 (ITK's image and the Volume).
  TempDir dir;
  Volume v(grid(256, 256, 256));
  for (size_t i = 0; i < v.voxels.size(); ++i) v.voxels[i] = static_cast<float>(i % 4093);
  writeImage(v, dir / "big.nii");
  writeImage(v, dir / "big.mha");
  writeImage(v, dir / "big.nii.gz", PixelType::Int16);
  v = Volume();
  const double copy = 256.0 * 256 * 256 * 4;
  for (const char* name : {"big.nii", "big.mha", "big.nii.gz"}) {
    Volume read;
    const int64_t growth = peakGrowth([&] { read = readImage(dir / name); });
    if (growth < 0) GTEST_SKIP() << "cannot reset the peak RSS (/proc/self/clear_refs)";
    EXPECT_EQ(read.voxels.size(), 256u * 256 * 256);
    EXPECT_LT(growth, 1.35 * copy) << name << ": peak grew " << growth / 1048576 << " MiB for a 64 MiB image";
  }
  TempDir series;
  std::vector<double> positions;
  for (int k = 0; k < 48; ++k) positions.push_back(2.0 * k);
  writeDicomSlices(series.path(), positions, 512, 512);
  Volume read;
  const int64_t growth = peakGrowth([&] { read = readImage(series.path()); });
  const double seriesCopy = 512.0 * 512 * 48 * 4;
  EXPECT_EQ(read.geometry.size, (std::array<int64_t, 3>{512, 512, 48}));
  EXPECT_LT(growth, 1.35 * seriesCopy) << "DICOM: peak grew " << growth / 1048576 << " MiB for a 48 MiB image";
}

}  // namespace
}  // namespace tessera::image
