#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <numbers>
#include <sstream>

#include "TestSupport.h"
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

// An oblique grid with a flip (det -1), anisotropic spacing and an off-centre origin, so a
// round trip that dropped or transposed any part of the geometry would show.
Geometry obliqueFlippedGrid() {
  Geometry g = grid(5, 4, 3, {0.8, 1.25, 2.5});
  g.origin = {-12.5, 30.25, 7.0};
  const double c = std::cos(std::numbers::pi / 6), s = std::sin(std::numbers::pi / 6);
  // Rotation by 30 degrees about z, then the z axis reversed.
  g.direction = {c, -s, 0,
                 s, c, 0,
                 0, 0, -1};
  return g;
}

Volume sampleVolume() {
  Volume v(obliqueFlippedGrid());
  for (size_t i = 0; i < v.voxels.size(); ++i) v.voxels[i] = static_cast<float>(i) * 0.37f - 5.125f;
  return v;
}

void expectSameGeometry(const Geometry& a, const Geometry& b) {
  EXPECT_EQ(a.size, b.size);
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(a.spacing[i], b.spacing[i], 1e-5) << "spacing " << i;
    EXPECT_NEAR(a.origin[i], b.origin[i], 1e-4) << "origin " << i;
  }
  for (int i = 0; i < 9; ++i) EXPECT_NEAR(a.direction[i], b.direction[i], 1e-5) << "direction " << i;
}

class RoundTrip : public ::testing::TestWithParam<std::string> {};

TEST_P(RoundTrip, KeepsGeometryAndValues) {
  TempDir dir;
  const fs::path file = dir / ("image" + GetParam());
  const Volume v = sampleVolume();
  writeImage(v, file);
  const Volume back = readImage(file);
  expectSameGeometry(back.geometry, v.geometry);
  EXPECT_EQ(back.voxels, v.voxels);
  // The atomic write leaves nothing but the target behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

INSTANTIATE_TEST_SUITE_P(Formats, RoundTrip, ::testing::Values(".nii.gz", ".nii", ".mha", ".nrrd"),
                         [](const auto& info) {
                           std::string name = info.param.substr(1);
                           std::replace(name.begin(), name.end(), '.', '_');
                           return name;
                         });

TEST(WriteImage, IntegerPixelTypesRoundAndClamp) {
  TempDir dir;
  Volume v(grid(6, 1, 1));
  v.voxels = {-3.0f, 0.4f, 0.6f, 254.6f, 300.0f, 17.5f};
  writeImage(v, dir / "u8.nii.gz", PixelType::UInt8);
  EXPECT_EQ(readImage(dir / "u8.nii.gz").voxels, (std::vector<float>{0, 0, 1, 255, 255, 18}));

  v.voxels = {-40000.0f, -1.5f, 2.5f, 40000.0f, -0.4f, 12.0f};
  writeImage(v, dir / "s16.nrrd", PixelType::Int16);
  EXPECT_EQ(readImage(dir / "s16.nrrd").voxels, (std::vector<float>{-32768, -2, 3, 32767, 0, 12}));
}

TEST(WriteImage, ReplacesAnExistingFile) {
  TempDir dir;
  Volume v(grid(2, 2, 2), 1.0f);
  writeImage(v, dir / "a.nii");
  v.voxels.assign(8, 2.0f);
  writeImage(v, dir / "a.nii");
  EXPECT_EQ(readImage(dir / "a.nii").voxels, v.voxels);
}

TEST(WriteImage, ErrorsNameThePath) {
  TempDir dir;
  const Volume v(grid(2, 2, 2));
  const fs::path missingDir = dir / "no-such-dir" / "x.nii.gz";
  const std::string m1 = errorOf([&] { writeImage(v, missingDir); });
  EXPECT_TRUE(contains(m1, missingDir.string()) && contains(m1, "does not exist")) << m1;
  const std::string m2 = errorOf([&] { writeImage(v, dir / "x.png"); });
  EXPECT_TRUE(contains(m2, (dir / "x.png").string()) && contains(m2, "cannot write this format")) << m2;
  Volume broken(grid(2, 2, 2));
  broken.voxels.resize(3);
  EXPECT_TRUE(contains(errorOf([&] { writeImage(broken, dir / "b.nii"); }), "holds 3 voxels"));
  // ITK fails inside the write (target is a directory): the temporary file is cleaned up.
  fs::create_directory(dir / "taken.nii");
  const std::string m3 = errorOf([&] { writeImage(v, dir / "taken.nii"); });
  EXPECT_TRUE(contains(m3, (dir / "taken.nii").string())) << m3;
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

void expectReadError(const fs::path& file, const std::string& problem) {
  const std::string msg = errorOf([&] { readImage(file); });
  EXPECT_TRUE(contains(msg, file.string() + ": ")) << msg;
  EXPECT_TRUE(contains(msg, problem)) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "message must be one line: " << msg;
}

// nibabel is an independent NIfTI reader; its affine is RAS, ITK's geometry is LPS.
TEST(WriteImage, NiftiAffineMatchesNibabel) {
  TempDir dir;
  const fs::path file = dir / "affine.nii.gz";
  const Volume v = sampleVolume();
  writeImage(v, file);

  std::string out;
  ASSERT_TRUE(runPython("import sys, nibabel as nib; i = nib.load(sys.argv[1]); "
                        "print(' '.join('%.9g' % x for x in i.affine[:3].ravel()), *i.shape, "
                        "'%.9g' % i.get_fdata()[1, 2, 0])",
                        file, out))
      << out;

  std::istringstream in(out);
  std::array<double, 12> affine{};
  for (double& a : affine) in >> a;
  std::array<int64_t, 3> shape{};
  for (auto& s : shape) in >> s;
  double value = 0;
  in >> value;
  ASSERT_FALSE(in.fail()) << out;

  const Geometry& g = v.geometry;
  for (int r = 0; r < 3; ++r) {
    const double flip = r < 2 ? -1.0 : 1.0;  // LPS -> RAS negates x and y
    for (int c = 0; c < 3; ++c)
      EXPECT_NEAR(affine[r * 4 + c], flip * g.direction[r * 3 + c] * g.spacing[c], 1e-5) << out;
    EXPECT_NEAR(affine[r * 4 + 3], flip * g.origin[r], 1e-4) << out;
  }
  EXPECT_EQ(shape, g.size);
  EXPECT_FLOAT_EQ(static_cast<float>(value), v.at(1, 2, 0));
}

// Files from an independent writer: big-endian data, a 2D image, NIfTI-2.
TEST(ReadImage, NibabelWrittenFiles) {
  TempDir dir;
  std::string out;
  ASSERT_TRUE(runPython("import sys, os, numpy as np, nibabel as nib; d = sys.argv[1]\n"
                        "h = nib.Nifti1Header(endianness='>'); h.set_data_dtype(np.int16)\n"
                        "a = np.arange(24, dtype=np.int16).reshape(2, 3, 4)\n"
                        "nib.save(nib.Nifti1Image(a, np.diag([1, 2, 3, 1]), header=h), os.path.join(d, 'be.nii'))\n"
                        "f = np.zeros((2, 3, 4), np.float32); f[0, 1, 2] = np.inf\n"
                        "h = nib.Nifti1Header(endianness='>'); h.set_data_dtype(np.float32)\n"
                        "nib.save(nib.Nifti1Image(f, np.eye(4), header=h), os.path.join(d, 'be-inf.nii.gz'))\n"
                        "nib.save(nib.Nifti1Image(np.ones((3, 4), np.float32), np.eye(4)), os.path.join(d, 'flat.nii'))\n"
                        "nib.save(nib.Nifti2Image(np.ones((2, 2, 2), np.float32), np.eye(4)), os.path.join(d, 'two.nii'))\n",
                        dir.path(), out))
      << out;

  const Volume be = readImage(dir / "be.nii");
  EXPECT_EQ(be.geometry.size, (std::array<int64_t, 3>{2, 3, 4}));
  EXPECT_DOUBLE_EQ(be.geometry.spacing[2], 3.0);
  EXPECT_EQ(be.at(1, 2, 3), 23.0f);  // numpy C order: a[x, y, z] = 12x + 4y + z
  EXPECT_EQ(be.at(0, 1, 2), 6.0f);
  expectReadError(dir / "be-inf.nii.gz", "contains Inf at voxel (0,1,2)");
  EXPECT_EQ(readImage(dir / "flat.nii").geometry.size, (std::array<int64_t, 3>{3, 4, 1}));
  const Volume two = readImage(dir / "two.nii");  // NIfTI-2: our own decoder
  EXPECT_EQ(two.geometry.size, (std::array<int64_t, 3>{2, 2, 2}));
  EXPECT_DOUBLE_EQ(two.geometry.direction[0], -1.0);  // RAS identity is LPS diag(-1, -1, 1)
  EXPECT_DOUBLE_EQ(two.geometry.direction[8], 1.0);
  EXPECT_EQ(two.at(1, 1, 1), 1.0f);
}

TEST(ReadImage, TwoDimensionalFileBecomesOneSliceVolume) {
  TempDir dir;
  const fs::path file = dir / "slice.mha";
  std::string data = "ObjectType = Image\nNDims = 2\nDimSize = 3 2\nElementType = MET_FLOAT\n"
                     "ElementSpacing = 0.5 0.25\nOffset = 1 2\nElementDataFile = LOCAL\n";
  const std::array<float, 6> values{1, 2, 3, 4, 5, 6};
  data.append(reinterpret_cast<const char*>(values.data()), sizeof values);
  writeBytes(file, data);
  const Volume v = readImage(file);
  EXPECT_EQ(v.geometry.size, (std::array<int64_t, 3>{3, 2, 1}));
  EXPECT_DOUBLE_EQ(v.geometry.spacing[0], 0.5);
  EXPECT_DOUBLE_EQ(v.geometry.spacing[1], 0.25);
  EXPECT_DOUBLE_EQ(v.geometry.origin[1], 2.0);
  EXPECT_EQ(v.voxels, std::vector<float>(values.begin(), values.end()));
}

// ---- bad input ---------------------------------------------------------------------------

// A single-file NIfTI-1 header (348 bytes + 4-byte extension flag) for float voxels.
std::string niftiHeader(int16_t nx, int16_t ny, int16_t nz) {
  std::string h(352, '\0');
  const auto put = [&](size_t offset, auto value) { std::memcpy(&h[offset], &value, sizeof value); };
  put(0, int32_t{348});
  const std::array<int16_t, 8> dim{3, nx, ny, nz, 1, 1, 1, 1};
  for (size_t i = 0; i < 8; ++i) put(40 + 2 * i, dim[i]);
  put(70, int16_t{16});  // NIFTI_TYPE_FLOAT32
  put(72, int16_t{32});  // bitpix
  for (size_t i = 0; i < 8; ++i) put(76 + 4 * i, 1.0f);  // pixdim
  put(108, 352.0f);      // vox_offset
  put(252, int16_t{1});  // qform_code: scanner
  std::memcpy(&h[344], "n+1\0", 4);
  return h;
}

TEST(ReadImageErrors, MissingFile) {
  TempDir dir;
  expectReadError(dir / "absent.nii.gz", "no such file or directory");
}

TEST(ReadImageErrors, TextFiles) {
  TempDir dir;
  const std::string text = "patient list\nnot an image at all\n";
  writeBytes(dir / "notes.txt", text);
  expectReadError(dir / "notes.txt", "unrecognised image format");
  writeBytes(dir / "fake.nii", text);
  expectReadError(dir / "fake.nii", "not a NIfTI file");
  writeBytes(dir / "fake.nii.gz", text);
  expectReadError(dir / "fake.nii.gz", "not a NIfTI file");
  writeBytes(dir / "fake.mha", text);
  expectReadError(dir / "fake.mha", "not a valid MetaImage file");
  writeBytes(dir / "fake.nrrd", text);
  expectReadError(dir / "fake.nrrd", "not a valid NRRD file");
  writeBytes(dir / "empty.nii", "");
  expectReadError(dir / "empty.nii", "not a NIfTI file");
}

class Truncated : public ::testing::TestWithParam<std::string> {};

TEST_P(Truncated, FileIsAnErrorNotZeros) {
  TempDir dir;
  const fs::path file = dir / ("cut" + GetParam());
  Volume v(grid(20, 20, 20));
  for (size_t i = 0; i < v.voxels.size(); ++i) v.voxels[i] = static_cast<float>(i % 97);  // not too compressible
  writeImage(v, file);
  const std::string bytes = readBytes(file);
  writeBytes(file, bytes.substr(0, bytes.size() / 2));
  // ITK would return zeros (NRRD: allocate, then fail); the size check refuses first.
  expectReadError(file, "truncated");
}

INSTANTIATE_TEST_SUITE_P(Formats, Truncated, ::testing::Values(".nii.gz", ".nii", ".mha", ".nrrd"),
                         [](const auto& info) {
                           std::string name = info.param.substr(1);
                           std::replace(name.begin(), name.end(), '.', '_');
                           return name;
                         });

TEST(ReadImageErrors, TruncatedCompressedMetaImage) {
  // Our writer does not compress MetaImage data; write one with zlib from Python.
  TempDir dir;
  std::string out;
  ASSERT_TRUE(runPython("import sys, os, zlib\n"
                        "data = zlib.compress(bytes((i * 7919 + i // 13) % 251 for i in range(8000)))\n"
                        "for name, payload in (('whole.mha', data), ('cut.mha', data[:len(data) // 2])):\n"
                        "    head = 'ObjectType = Image\\nNDims = 3\\nDimSize = 20 20 20\\nElementType = MET_UCHAR\\n'\n"
                        "    head += 'CompressedData = True\\nCompressedDataSize = %d\\n' % len(payload)\n"
                        "    head += 'ElementDataFile = LOCAL\\n'\n"
                        "    open(os.path.join(sys.argv[1], name), 'wb').write(head.encode() + payload)\n",
                        dir.path(), out))
      << out;
  EXPECT_EQ(readImage(dir / "whole.mha").voxels.size(), 8000u);
  expectReadError(dir / "cut.mha", "truncated or corrupt compressed voxel data");
}

TEST(ReadImageErrors, GzipWithCutOffTrailer) {
  // All voxel data present, only the CRC/size trailer missing: still not a valid file.
  TempDir dir;
  const fs::path file = dir / "trailer.nii.gz";
  writeImage(Volume(grid(4, 4, 4), 1.0f), file);
  const std::string bytes = readBytes(file);
  writeBytes(file, bytes.substr(0, bytes.size() - 4));
  expectReadError(file, "gzip");
}

TEST(ReadImageErrors, GzipCutInsideTheHeader) {
  // Constant voxels compress to almost nothing: half the file ends inside the NIfTI header.
  TempDir dir;
  const fs::path file = dir / "tiny.nii.gz";
  writeImage(Volume(grid(20, 20, 20), 7.0f), file);
  const std::string bytes = readBytes(file);
  writeBytes(file, bytes.substr(0, bytes.size() / 2));
  expectReadError(file, "truncated or corrupt gzip data");
}

TEST(ReadImageErrors, NonFiniteVoxels) {
  TempDir dir;
  Volume v(grid(4, 3, 2));
  v.at(1, 2, 1) = std::numeric_limits<float>::quiet_NaN();
  writeImage(v, dir / "nan.nii.gz");
  expectReadError(dir / "nan.nii.gz", "contains NaN at voxel (1,2,1)");
  v.at(1, 2, 1) = 0;
  v.at(3, 0, 0) = -std::numeric_limits<float>::infinity();
  writeImage(v, dir / "inf.mha");
  expectReadError(dir / "inf.mha", "contains Inf at voxel (3,0,0)");
}

TEST(ReadImageErrors, NaNInAOneDimensionalNifti) {
  // dim[0] = 1 leaves dim[2], dim[3] unused (0 here): the voxel position must still work.
  TempDir dir;
  std::string h = niftiHeader(3, 0, 0);
  const int16_t rank = 1;
  std::memcpy(&h[40], &rank, 2);
  const std::array<float, 3> data{1.0f, std::numeric_limits<float>::quiet_NaN(), 2.0f};
  writeBytes(dir / "line.nii", h + std::string(reinterpret_cast<const char*>(data.data()), sizeof data));
  expectReadError(dir / "line.nii", "contains NaN at voxel (1,0,0)");
}

TEST(ReadImageErrors, ZeroVoxels) {
  TempDir dir;
  writeBytes(dir / "zero.nii", niftiHeader(0, 4, 4));
  expectReadError(dir / "zero.nii", "0 voxels");
  // The same through ITK's own header parsing (MetaImage).
  writeBytes(dir / "zero.mha", "ObjectType = Image\nNDims = 3\nDimSize = 4 0 4\nElementType = MET_FLOAT\n"
                               "ElementDataFile = LOCAL\n");
  expectReadError(dir / "zero.mha", "0 voxels");
}

TEST(ReadImageErrors, TooManyVoxelsFailsBeforeAllocating) {
  // 2048 x 2048 x 1024 floats = 16 GiB announced, no data: must fail on the header alone.
  TempDir dir;
  writeBytes(dir / "huge.nii", niftiHeader(2048, 2048, 1024));
  expectReadError(dir / "huge.nii", "too large");
  writeBytes(dir / "huge.mha", "ObjectType = Image\nNDims = 3\nDimSize = 2048 2048 1024\nElementType = MET_FLOAT\n"
                               "ElementDataFile = LOCAL\n");
  expectReadError(dir / "huge.mha", "too large");
}

TEST(ReadImageErrors, FourDimensionalImage) {
  TempDir dir;
  std::string h = niftiHeader(2, 2, 2);
  const std::array<int16_t, 2> dims{4, 2};  // dim[0] = 4, dim[4] = 2
  std::memcpy(&h[40], &dims[0], 2);
  std::memcpy(&h[48], &dims[1], 2);
  writeBytes(dir / "series.nii", h + std::string(16 * 4, '\0'));
  expectReadError(dir / "series.nii", "image is 4D (2x2x2x2, 2 volumes); pass --volume N (0 to 1)");
}

TEST(ReadImageErrors, VectorImage) {
  TempDir dir;
  writeBytes(dir / "rgb.mha", "ObjectType = Image\nNDims = 2\nDimSize = 2 2\nElementNumberOfChannels = 3\n"
                              "ElementType = MET_UCHAR\nElementDataFile = LOCAL\n" + std::string(12, '\x10'));
  expectReadError(dir / "rgb.mha", "3 values per voxel");
}

TEST(ReadImageErrors, NonFiniteGeometryInHeader) {
  // ITK's direction check would abort() the process on a NaN sform.
  TempDir dir;
  std::string h = niftiHeader(2, 2, 2);
  const int16_t sformCode = 1;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(&h[254], &sformCode, 2);
  std::memcpy(&h[280], &nan, 4);
  writeBytes(dir / "nan-sform.nii", h + std::string(8 * 4, '\0'));
  expectReadError(dir / "nan-sform.nii", "invalid NIfTI header: srow");
}

TEST(ReadImageErrors, SubnormalSformIsRejected) {
  // Found by fuzzing: a subnormal srow value sends ITK's SVD into an endless loop.
  TempDir dir;
  std::string h = niftiHeader(2, 2, 2);
  const int16_t sformCode = 2;
  const std::array<float, 12> srow{2, 0, 0, 5e8f, 0, 3, 0, 0, 0, 0, 1, 1e-44f};
  std::memcpy(&h[254], &sformCode, 2);
  std::memcpy(&h[280], srow.data(), sizeof srow);
  writeBytes(dir / "subnormal.nii", h + std::string(8 * 4, '\0'));
  expectReadError(dir / "subnormal.nii", "invalid NIfTI header: srow");
}

TEST(ReadImage, HandCraftedHeaderWithDataReads) {
  // Guards the bad-input tests above: the same header with its data is a valid image.
  TempDir dir;
  std::string data(2 * 3 * 4 * 4, '\0');
  const float one = 1.0f;
  std::memcpy(&data[0], &one, 4);
  writeBytes(dir / "ok.nii", niftiHeader(2, 3, 4) + data);
  const Volume v = readImage(dir / "ok.nii");
  EXPECT_EQ(v.geometry.size, (std::array<int64_t, 3>{2, 3, 4}));
  EXPECT_EQ(v.voxels[0], 1.0f);
}

}  // namespace
}  // namespace tessera::image
