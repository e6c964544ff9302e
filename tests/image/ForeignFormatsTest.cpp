// What people bring besides single-file NIfTI-1: NIfTI-2, .hdr/.img pairs (NIfTI-1 and Analyze
// 7.5), 4D series, NaN backgrounds. The headers are written byte by byte here; the folders of
// test data that nibabel and pydicom ship (Debian: python3-nibabel, python3-pydicom) are read
// and compared with those libraries' own reading when installed.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <vector>


#include "TestSupport.h"
#include "tessera/image/ImageIO.h"

namespace tessera::image {
namespace {

namespace fs = std::filesystem;
using test::errorOf;
using test::TempDir;
using test::writeBytes;

template <typename T>
void put(std::string& bytes, size_t offset, T value) {
  std::memcpy(bytes.data() + offset, &value, sizeof(T));
}

struct Header {
  int version = 1;       // 1, 2, or 0 for Analyze 7.5
  bool pair = false;     // .hdr/.img
  std::vector<int64_t> dims;
  std::array<double, 3> pixdim{2.0, 3.0, 4.0};
  bool sform = true;     // srow below with sform_code 1; else no transform at all
  double srow[12] = {-2, 0, 0, 10, 0, 3, 0, -20, 0, 0, 4, 30};  // RAS
};

// Header bytes (with vox_offset pointing right behind it for single files, 0 for pairs).
std::string header(const Header& h) {
  const bool two = h.version == 2;
  std::string b(two ? 540 : 348, '\0');
  const int64_t offset = h.pair ? 0 : (two ? 544 : 352);
  if (two) {
    put<int32_t>(b, 0, 540);
    std::memcpy(b.data() + 4, h.pair ? "ni2\0\r\n\032\n" : "n+2\0\r\n\032\n", 8);
    put<int16_t>(b, 12, 16);  // float32
    put<int16_t>(b, 14, 32);
    put<int64_t>(b, 16, static_cast<int64_t>(h.dims.size()));
    for (size_t i = 0; i < h.dims.size(); ++i) put<int64_t>(b, 24 + 8 * i, h.dims[i]);
    put<double>(b, 104, 1.0);
    for (int i = 0; i < 3; ++i) put<double>(b, 112 + 8 * i, h.pixdim[i]);
    put<int64_t>(b, 168, offset);
    put<double>(b, 176, 1.0);
    put<int32_t>(b, 348, h.sform ? 1 : 0);
    for (int i = 0; i < 12; ++i) put<double>(b, 400 + 8 * i, h.srow[i]);
  } else {
    put<int32_t>(b, 0, 348);
    put<int16_t>(b, 40, static_cast<int16_t>(h.dims.size()));
    for (size_t i = 0; i < h.dims.size(); ++i) put<int16_t>(b, 42 + 2 * i, static_cast<int16_t>(h.dims[i]));
    put<int16_t>(b, 70, 16);
    put<int16_t>(b, 72, 32);
    put<float>(b, 76, 1.0f);
    for (int i = 0; i < 3; ++i) put<float>(b, 80 + 4 * i, static_cast<float>(h.pixdim[i]));
    put<float>(b, 108, static_cast<float>(offset));
    if (h.version == 1) {
      put<float>(b, 112, 1.0f);
      put<int16_t>(b, 254, h.sform ? 1 : 0);
      for (int i = 0; i < 12; ++i) put<float>(b, 280 + 4 * i, static_cast<float>(h.srow[i]));
      std::memcpy(b.data() + 344, h.pair ? "ni1" : "n+1", 4);
    }
  }
  b.resize(static_cast<size_t>(offset) > b.size() ? static_cast<size_t>(offset) : b.size(), '\0');
  return b;
}

std::string floats(const std::vector<float>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
}

std::vector<float> ramp(size_t n) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>(i);
  return v;
}

void expectSformGeometry(const Geometry& g) {
  // srow (RAS) diag(-2, 3, 4) + (10, -20, 30): LPS origin (-10, 20, 30), x axis along +L.
  EXPECT_NEAR(g.spacing[0], 2.0, 1e-9);
  EXPECT_NEAR(g.spacing[1], 3.0, 1e-9);
  EXPECT_NEAR(g.spacing[2], 4.0, 1e-9);
  EXPECT_NEAR(g.origin[0], -10.0, 1e-9);
  EXPECT_NEAR(g.origin[1], 20.0, 1e-9);
  EXPECT_NEAR(g.origin[2], 30.0, 1e-9);
  EXPECT_NEAR(g.direction[0], 1.0, 1e-9);  // -(-2)/2
  EXPECT_NEAR(g.direction[4], -1.0, 1e-9);
  EXPECT_NEAR(g.direction[8], 1.0, 1e-9);
}

TEST(ForeignFormats, Nifti2SingleFileReads) {
  TempDir dir;
  Header h;
  h.version = 2;
  h.dims = {4, 3, 2};
  writeBytes(dir / "a.nii", header(h) + floats(ramp(24)));
  const Volume v = readImage(dir / "a.nii");
  EXPECT_EQ(v.geometry.size, (std::array<int64_t, 3>{4, 3, 2}));
  expectSformGeometry(v.geometry);
  EXPECT_EQ(v.at(3, 2, 1), 23.0f);
  EXPECT_EQ(v.at(1, 0, 1), 13.0f);
}

TEST(ForeignFormats, Nifti2WithParallelAxesIsAnError) {
  TempDir dir;
  Header h;
  h.version = 2;
  h.dims = {4, 3, 2};
  const double parallel[12] = {1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0};  // x and y columns both along x
  std::copy(parallel, parallel + 12, h.srow);
  writeBytes(dir / "flat.nii", header(h) + floats(ramp(24)));
  const std::string msg = errorOf([&] { readImage(dir / "flat.nii"); });
  EXPECT_NE(msg.find("flat.nii: invalid NIfTI header: the voxel axes of its affine are parallel"), std::string::npos)
      << msg;
}

TEST(ForeignFormats, Nifti2TruncatedIsAnError) {
  TempDir dir;
  Header h;
  h.version = 2;
  h.dims = {4, 3, 2};
  writeBytes(dir / "a.nii", header(h) + floats(ramp(20)));
  const std::string msg = errorOf([&] { readImage(dir / "a.nii"); });
  EXPECT_NE(msg.find("a.nii: file is truncated"), std::string::npos) << msg;
}

TEST(ForeignFormats, Nifti1PairReadsFromHdrOrImg) {
  TempDir dir;
  Header h;
  h.pair = true;
  h.dims = {4, 3, 2};
  writeBytes(dir / "p.hdr", header(h));
  writeBytes(dir / "p.img", floats(ramp(24)));
  for (const char* name : {"p.hdr", "p.img"}) {
    const Volume v = readImage(dir / name);
    EXPECT_EQ(v.geometry.size, (std::array<int64_t, 3>{4, 3, 2})) << name;
    expectSformGeometry(v.geometry);
    EXPECT_EQ(v.at(2, 1, 1), 18.0f) << name;
  }
}

TEST(ForeignFormats, Nifti2PairReads) {
  TempDir dir;
  Header h;
  h.version = 2;
  h.pair = true;
  h.dims = {4, 3, 2};
  writeBytes(dir / "p.hdr", header(h));
  writeBytes(dir / "p.img", floats(ramp(24)));
  const Volume v = readImage(dir / "p.hdr");
  expectSformGeometry(v.geometry);
  EXPECT_EQ(v.at(3, 2, 1), 23.0f);
}

TEST(ForeignFormats, AnalyzePairUsesTheDefaultAffine) {
  TempDir dir;
  Header h;
  h.version = 0;
  h.pair = true;
  h.dims = {5, 3, 2};
  writeBytes(dir / "an.hdr", header(h));
  writeBytes(dir / "an.img", floats(ramp(30)));
  const Volume v = readImage(dir / "an.hdr");
  EXPECT_EQ(v.geometry.size, (std::array<int64_t, 3>{5, 3, 2}));
  // nibabel: RAS affine diag(-2, 3, 4), the grid's centre ((n-1)/2) at 0 mm; LPS flips x and y.
  EXPECT_NEAR(v.geometry.direction[0], 1.0, 1e-9);
  EXPECT_NEAR(v.geometry.direction[4], -1.0, 1e-9);
  EXPECT_NEAR(v.geometry.origin[0], -4.0, 1e-9);  // RAS x = 2*2 = 4
  EXPECT_NEAR(v.geometry.origin[1], 3.0, 1e-9);   // RAS y = -1*3
  EXPECT_NEAR(v.geometry.origin[2], -2.0, 1e-9);  // RAS z = -0.5*4
  EXPECT_EQ(v.at(4, 2, 1), 29.0f);
}

TEST(ForeignFormats, AnalyzePairWithSpmOriginAndHistoryText) {
  TempDir dir;
  Header h;
  h.version = 0;
  h.pair = true;
  h.dims = {5, 3, 2};
  std::string bytes = header(h);
  std::memcpy(bytes.data() + 148, "SPM compatible", 14);  // descrip
  bytes[252] = 0;                                          // orient
  put<int16_t>(bytes, 253, 3);                             // originator: voxel (3, 2, 1), 1-based
  put<int16_t>(bytes, 255, 2);
  put<int16_t>(bytes, 257, 1);
  std::memcpy(bytes.data() + 263, "\xff\xff\x7f\x7fgarbage", 11);  // generated/scannum: no transforms
  writeBytes(dir / "spm.hdr", bytes);
  writeBytes(dir / "spm.img", floats(ramp(30)));
  const Volume v = readImage(dir / "spm.hdr");
  // nibabel's Spm99/Spm2 reading: voxel origin-1 = (2, 1, 0) at 0 mm; RAS x = 2*2 = 4, y = -3, z = 0.
  EXPECT_NEAR(v.geometry.origin[0], -4.0, 1e-9);
  EXPECT_NEAR(v.geometry.origin[1], 3.0, 1e-9);
  EXPECT_NEAR(v.geometry.origin[2], 0.0, 1e-9);
}

TEST(ForeignFormats, PairWithoutImgOrHdrSaysWhatIsMissing) {
  TempDir dir;
  Header h;
  h.pair = true;
  h.dims = {4, 3, 2};
  writeBytes(dir / "p.hdr", header(h));
  std::string msg = errorOf([&] { readImage(dir / "p.hdr"); });
  EXPECT_NE(msg.find("p.hdr: the voxel data file p.img is missing"), std::string::npos) << msg;
  writeBytes(dir / "q.img", floats(ramp(24)));
  msg = errorOf([&] { readImage(dir / "q.img"); });
  EXPECT_NE(msg.find("q.img: the header q.hdr is missing"), std::string::npos) << msg;
  writeBytes(dir / "p.img", floats(ramp(10)));
  msg = errorOf([&] { readImage(dir / "p.hdr"); });
  EXPECT_NE(msg.find("p.img: file is truncated"), std::string::npos) << msg;
}

TEST(ForeignFormats, NanIsRefusedWithAHintUnlessReplaced) {
  TempDir dir;
  Header h;
  h.dims = {4, 3, 2};
  std::vector<float> values = ramp(24);
  values[0] = values[5] = std::nanf("");
  writeBytes(dir / "n.nii", header(h) + floats(values));
  const std::string msg = errorOf([&] { readImage(dir / "n.nii"); });
  EXPECT_NE(msg.find("n.nii: contains NaN at voxel (0,0,0)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--nan-as VALUE"), std::string::npos) << msg;
  ReadOptions options;
  options.replaceNaN = true;
  options.nanValue = -7.0f;
  const Volume v = readImage(dir / "n.nii", options);
  EXPECT_EQ(v.at(0, 0, 0), -7.0f);
  EXPECT_EQ(v.at(1, 1, 0), -7.0f);
  EXPECT_EQ(v.at(2, 1, 0), 6.0f);
  // Inf stays an error.
  values[5] = INFINITY;
  writeBytes(dir / "i.nii", header(h) + floats(values));
  EXPECT_NE(errorOf([&] { readImage(dir / "i.nii", options); }).find("contains Inf"), std::string::npos);
}

TEST(ForeignFormats, NanAsAlsoAppliesToOtherFormats) {
  TempDir dir;
  Volume v(test::grid(3, 3, 2), 1.0f);
  v.at(1, 1, 1) = std::nanf("");
  writeImage(v, dir / "n.mha");
  EXPECT_NE(errorOf([&] { readImage(dir / "n.mha"); }).find("--nan-as"), std::string::npos);
  ReadOptions options;
  options.replaceNaN = true;
  EXPECT_EQ(readImage(dir / "n.mha", options).at(1, 1, 1), 0.0f);
}

TEST(ForeignFormats, FourDNeedsAVolume) {
  TempDir dir;
  for (const int version : {1, 2}) {
    Header h;
    h.version = version;
    h.dims = {4, 3, 2, 3};
    const fs::path file = dir / ("f" + std::to_string(version) + ".nii");
    writeBytes(file, header(h) + floats(ramp(72)));
    const std::string msg = errorOf([&] { readImage(file); });
    EXPECT_NE(msg.find(file.string() + ": image is 4D (4x3x2x3, 3 volumes); pass --volume N (0 to 2)"),
              std::string::npos)
        << msg;
    ReadOptions options;
    options.volume = 2;
    const Volume v = readImage(file, options);
    EXPECT_EQ(v.geometry.size, (std::array<int64_t, 3>{4, 3, 2}));
    EXPECT_EQ(v.volumes, 3);
    EXPECT_EQ(v.at(0, 0, 0), 48.0f);
    EXPECT_EQ(v.at(3, 2, 1), 71.0f);
    expectSformGeometry(v.geometry);
    options.volume = 3;
    EXPECT_NE(errorOf([&] { readImage(file, options); }).find("--volume 3 is out of range: the image has 3 volumes"),
              std::string::npos);
  }
}

TEST(ForeignFormats, VolumeOfA3DImage) {
  TempDir dir;
  writeImage(Volume(test::grid(3, 3, 2), 1.0f), dir / "a.nii.gz");
  ReadOptions options;
  options.volume = 0;
  EXPECT_EQ(readImage(dir / "a.nii.gz", options).volumes, 1);
  options.volume = 1;
  EXPECT_NE(errorOf([&] { readImage(dir / "a.nii.gz", options); }).find("--volume 1 is out of range"), std::string::npos);
}

}  // namespace
}  // namespace tessera::image

namespace tessera::image {
namespace {

TEST(ForeignFormats, Nifti2IsWrittenForGridsBeyondNifti1) {
  test::TempDir dir;
  Geometry g = test::grid(32768, 2, 1, {0.5, 2.0, 3.0});
  g.origin = {1.0, -2.0, 3.5};
  g.direction = {0, 1, 0, -1, 0, 0, 0, 0, 1};
  Volume v(g, 0.0f);
  v.at(32767, 1, 0) = 7.0f;
  v.at(5, 0, 0) = 3.0f;
  for (const char* name : {"wide.nii", "wide.nii.gz"}) {
    writeImage(v, dir / name, PixelType::UInt8);
    const Volume back = readImage(dir / name);
    EXPECT_TRUE(back.geometry.sameGrid(g, 1e-9)) << name << ": " << back.geometry.describe();
    for (int i = 0; i < 9; ++i) EXPECT_NEAR(back.geometry.direction[i], g.direction[i], 1e-12) << i;
    EXPECT_EQ(back.at(32767, 1, 0), 7.0f);
    EXPECT_EQ(back.at(5, 0, 0), 3.0f);
  }
  EXPECT_EQ(test::readBytes(dir / "wide.nii").substr(4, 3), "n+2");
  // nibabel, where installed, reads the same grid (RAS affine = LPS geometry with x, y negated).
  const std::string cmd = "/usr/bin/python3 -c 'import sys, nibabel as n; i = n.load(sys.argv[1]); "
                          "print(i.header.sizeof_hdr, *i.shape, *i.affine[:3].ravel())' '" +
                          (dir / "wide.nii.gz").string() + "' 2>/dev/null";
  std::string out;
  if (FILE* pipe = popen(cmd.c_str(), "r")) {
    char buffer[512];
    while (fgets(buffer, sizeof buffer, pipe)) out += buffer;
    pclose(pipe);
  }
  if (!out.empty()) {
    std::istringstream in(out);
    int sizeofHdr = 0;
    std::array<int64_t, 3> shape{};
    std::array<double, 12> affine{};
    in >> sizeofHdr >> shape[0] >> shape[1] >> shape[2];
    for (double& a : affine) in >> a;
    EXPECT_EQ(sizeofHdr, 540) << out;
    EXPECT_EQ(shape, g.size) << out;
    for (int r = 0; r < 3; ++r) {
      const double flip = r < 2 ? -1.0 : 1.0;
      for (int c = 0; c < 3; ++c) EXPECT_NEAR(affine[r * 4 + c], flip * g.direction[r * 3 + c] * g.spacing[c], 1e-9) << out;
      EXPECT_NEAR(affine[r * 4 + 3], flip * g.origin[r], 1e-9) << out;
    }
  }
  // NIfTI-1 below the limit, as before.
  writeImage(Volume(test::grid(4, 3, 2), 1.0f), dir / "small.nii");
  EXPECT_EQ(test::readBytes(dir / "small.nii").substr(344, 3), "n+1");
}

}  // namespace
}  // namespace tessera::image
