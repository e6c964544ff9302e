// Runs the real `tessera` binary the way a user does and checks exit codes and messages.
#include <sys/wait.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "CliScratch.h"
#include "tessera/image/ImageIO.h"

namespace fs = std::filesystem;
using tessera::image::Geometry;
using tessera::image::Volume;

namespace {

using Result = tessera::test::SplitOutput;

class Cli : public tessera::test::CliScratchTest {
 protected:
  Cli() : CliScratchTest("tessera-cli-") {}

  Result run(const std::string& args) { return runSplit(args); }

  // A bright sphere in a dark box, with its mask.
  void writeSphere(const std::string& image, const std::string& labels, double radius, Geometry g = {}) {
    if (g.size[0] == 0) {
      g.size = {32, 32, 8};
      g.spacing = {1.0, 1.0, 2.0};
      g.origin = {3, -4, 5};
    }
    Volume img(g), lab(g);
    for (int64_t z = 0; z < g.size[2]; ++z)
      for (int64_t y = 0; y < g.size[1]; ++y)
        for (int64_t x = 0; x < g.size[0]; ++x) {
          const double dx = x - 16, dy = y - 16, dz = (z - 4) * 2.0;
          const bool inside = dx * dx + dy * dy + dz * dz <= radius * radius;
          img.at(x, y, z) = inside ? 100.5f + static_cast<float>((x * 7 + y * 3) % 11) : 20.0f + static_cast<float>((x + y) % 5);
          lab.at(x, y, z) = inside ? 1.0f : 0.0f;
        }
    if (!image.empty()) tessera::image::writeImage(img, image);
    if (!labels.empty()) tessera::image::writeImage(lab, labels, tessera::image::PixelType::UInt8);
  }
};

int lineCount(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

}  // namespace

TEST_F(Cli, EverySubcommandHasHelp) {
  for (const char* sub : {"info", "train", "predict", "evaluate", "demo"}) {
    const auto r = run(std::string(sub) + " --help");
    EXPECT_EQ(r.code, 0) << sub;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << sub << ": " << r.out;
  }
  const auto r = run("--help");
  EXPECT_NE(r.out.find("demo"), std::string::npos);
  EXPECT_NE(run("").code, 0);
  EXPECT_NE(run("frobnicate").code, 0);
}

TEST_F(Cli, InfoPrintsGeometryAndRange) {
  writeSphere(path("img.nii.gz"), "", 6);
  const auto r = run("info " + path("img.nii.gz"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("32 x 32 x 8"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 x 1 x 2 mm"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("3, -4, 5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("values:"), std::string::npos) << r.out;
}

TEST_F(Cli, BadInputGivesOneLineNamingTheFile) {
  auto expectOneLineError = [&](const std::string& args, const std::string& file, const std::string& problem) {
    const auto r = run(args);
    EXPECT_NE(r.code, 0) << args;
    EXPECT_EQ(lineCount(r.err), 1) << r.err;
    EXPECT_NE(r.err.find(file), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(problem), std::string::npos) << r.err;
  };
  expectOneLineError("info " + path("nope.nii.gz"), "nope.nii.gz", "no such file");
  std::ofstream(path("notes.txt")) << "this is not an image\n";
  expectOneLineError("info " + path("notes.txt"), "notes.txt", "");
  expectOneLineError("predict --model " + path("nope.tsm") + " --in x.nii --out y.nii", "nope.tsm", "no such file");
  std::ofstream(path("fake.tsm")) << "PK\x03\x04 not a model";
  writeSphere(path("img.nii.gz"), path("lab.nii.gz"), 6);
  expectOneLineError("predict --model " + path("fake.tsm") + " --in " + path("img.nii.gz") + " --out " + path("o.nii"),
                     "fake.tsm", "not a Tessera model file");

  // ITK prints its own warning for a directory without DICOM; the user must see only ours.
  fs::create_directories(path("nodicom"));
  std::ofstream(path("nodicom/readme.txt")) << "no images here\n";
  expectOneLineError("info " + path("nodicom"), "nodicom", "no DICOM series found");

  const auto full = fs::file_size(path("img.nii.gz"));
  fs::copy_file(path("img.nii.gz"), path("cut.nii.gz"));
  fs::resize_file(path("cut.nii.gz"), full / 2);
  expectOneLineError("info " + path("cut.nii.gz"), "cut.nii.gz", "truncated");

  Volume nan = tessera::image::readImage(path("img.nii.gz"));
  nan.at(3, 4, 5) = std::numeric_limits<float>::quiet_NaN();
  tessera::image::writeImage(nan, path("nan.nii"));
  expectOneLineError("info " + path("nan.nii"), "nan.nii", "NaN");
}

TEST_F(Cli, EvaluateJsonMatchesHandComputedDice) {
  Geometry g;
  g.size = {10, 10, 1};
  Volume a(g), b(g);
  for (int x = 0; x < 4; ++x) a.at(x, 0, 0) = 1;      // 4 voxels
  for (int x = 2; x < 8; ++x) b.at(x, 0, 0) = 1;      // 6 voxels, 2 shared
  tessera::image::writeImage(a, path("a.nii.gz"), tessera::image::PixelType::UInt8);
  tessera::image::writeImage(b, path("b.nii.gz"), tessera::image::PixelType::UInt8);
  const auto r = run("evaluate --pred " + path("a.nii.gz") + " --truth " + path("b.nii.gz") + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  const auto& l = j.at("labels").at("1");
  EXPECT_NEAR(l.at("dice").get<double>(), 2.0 * 2 / (4 + 6), 1e-9);
  EXPECT_NEAR(l.at("jaccard").get<double>(), 2.0 / 8, 1e-9);
  EXPECT_NEAR(l.at("volume_pred_ml").get<double>(), 0.004, 1e-9);
  EXPECT_NEAR(l.at("volume_truth_ml").get<double>(), 0.006, 1e-9);
  EXPECT_TRUE(l.contains("hd95_mm"));
  const auto table = run("evaluate --pred " + path("a.nii.gz") + " --truth " + path("b.nii.gz"));
  EXPECT_NE(table.out.find("0.4000"), std::string::npos) << table.out;
}

TEST_F(Cli, EvaluateRefusesDifferentGrids) {
  writeSphere(path("a.nii.gz"), "", 6);
  Geometry g;
  g.size = {32, 32, 8};
  g.spacing = {1, 1, 3};
  writeSphere(path("b.nii.gz"), "", 6, g);
  const auto r = run("evaluate --pred " + path("a.nii.gz") + " --truth " + path("b.nii.gz"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("differs"), std::string::npos) << r.err;
}

TEST_F(Cli, TrainRejectsALabelMapOnAnotherGrid) {
  writeSphere(path("img.nii.gz"), "", 6);
  Geometry g;
  g.size = {32, 32, 9};
  writeSphere("", path("lab.nii.gz"), 6, g);
  const auto r = run("train --images " + path("img.nii.gz") + " --labels " + path("lab.nii.gz") + " --out " +
                     path("m.tsm") + " --epochs 1");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("lab.nii.gz"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("differs"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(path("m.tsm")));
}

TEST_F(Cli, TrainPredictEvaluateEndToEnd) {
  writeSphere(path("img.nii.gz"), path("lab.nii.gz"), 9);
  std::ofstream(path("spec.json")) << R"({"dims": 2, "axis": 2, "base_features": 8, "depth": 3, "norm": "batch"})";
  auto r = run("train --images " + path("img.nii.gz") + " --labels " + path("lab.nii.gz") + " --spec " +
               path("spec.json") + " --out " + path("m.tsm") + " --epochs 40 --batch-size 2 --threads 1 --task sphere --modality CT");
  ASSERT_EQ(r.code, 0) << r.err;
  // Not a terminal: one plain progress line per epoch.
  EXPECT_NE(r.err.find("epoch 40/40"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("left"), std::string::npos);
  r = run("predict --model " + path("m.tsm") + " --in " + path("img.nii.gz") + " --out " + path("seg.nii.gz"));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto seg = tessera::image::readImage(path("seg.nii.gz"));
  const auto img = tessera::image::readImage(path("img.nii.gz"));
  EXPECT_TRUE(seg.geometry.sameGrid(img.geometry, 1e-6));
  r = run("evaluate --json --pred " + path("seg.nii.gz") + " --truth " + path("lab.nii.gz"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_GE(nlohmann::json::parse(r.out)["labels"]["1"]["dice"].get<double>(), 0.9);

  // Fine-tuning from the model writes the next generation.
  r = run("train --images " + path("img.nii.gz") + " --labels " + path("lab.nii.gz") + " --init " + path("m.tsm") +
          " --out " + path("m2.tsm") + " --epochs 1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("generation 1"), std::string::npos) << r.out;
}

TEST_F(Cli, TrainExplainsNonIntegerLabels) {
  writeSphere(path("img.nii.gz"), "", 6);
  writeSphere(path("mask.nii.gz"), "", 6);  // intensities, not labels
  const auto r = run("train --images " + path("img.nii.gz") + " --labels " + path("mask.nii.gz") + " --out " +
                     path("m.tsm") + " --epochs 1");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("mask.nii.gz"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--binarize"), std::string::npos) << r.err;
}

// ---- hostile image files (issue 9) -------------------------------------------------------------

namespace {

std::string gzipMember(const std::string& data) {
  z_stream z{};
  deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, data.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// A NIfTI-1 header for float voxels of the given size.
std::string floatNiftiHeader(int16_t nx, int16_t ny, int16_t nz) {
  std::string h(352, '\0');
  const auto put = [&](size_t offset, auto value) { std::memcpy(&h[offset], &value, sizeof value); };
  put(0, int32_t{348});
  const int16_t dim[8] = {3, nx, ny, nz, 1, 1, 1, 1};
  for (size_t i = 0; i < 8; ++i) put(40 + 2 * i, dim[i]);
  put(70, int16_t{16});
  put(72, int16_t{32});
  for (size_t i = 0; i < 8; ++i) put(76 + 4 * i, 1.0f);
  put(108, 352.0f);
  std::memcpy(&h[344], "n+1\0", 4);
  return h;
}

int lineCountOf(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

}  // namespace

TEST_F(Cli, InfoRefusesA4MBGzipDeclaring1024CubedQuickly) {
  // 4 GiB of real zeros in 4 MB (gzip members of 16 MiB). Before: 49 s, 12.6 GB, then printed.
  {
    std::ofstream out(path("bomb.nii.gz"), std::ios::binary);
    out << gzipMember(floatNiftiHeader(1024, 1024, 1024));
    const std::string chunk = gzipMember(std::string(size_t{16} << 20, '\0'));
    for (int i = 0; i < 256; ++i) out << chunk;
  }
  ASSERT_LT(fs::file_size(path("bomb.nii.gz")), 5u << 20);
  const auto started = std::chrono::steady_clock::now();
  const auto r = run("info " + path("bomb.nii.gz"));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  RecordProperty("seconds", std::to_string(seconds));  // reported, not asserted (shared CI machines)
  EXPECT_EQ(r.code, 5) << r.err;  // too_large
  EXPECT_EQ(lineCountOf(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("bomb.nii.gz: image is too large: dimensions 1024x1024x1024"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("TESSERA_MAX_VOXELS"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST_F(Cli, InfoRefusesDataFilesOutsideTheHeadersFolder) {
  const auto expectRefused = [&](const std::string& name, const std::string& header, const std::string& problem) {
    std::ofstream(path(name), std::ios::binary) << header;
    const auto r = run("info " + path(name));
    EXPECT_EQ(r.code, 1) << name << ": " << r.err;
    EXPECT_EQ(lineCountOf(r.err), 1) << r.err;
    EXPECT_NE(r.err.find(name + ": "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(problem), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "") << "nothing of the named file may be shown";
  };
  const std::string meta = "ObjectType = Image\nNDims = 2\nDimSize = 8 4\nElementType = MET_UCHAR\nElementDataFile = ";
  expectRefused("passwd.mha", meta + "/etc/passwd\n", "data file '/etc/passwd' is an absolute path");
  expectRefused("up.mhd", meta + "../../etc/passwd\n", "lies outside the header's folder");
  expectRefused("nrrd.nhdr", "NRRD0004\ntype: uint8\ndimension: 2\nsizes: 8 4\nencoding: raw\ndata file: /etc/passwd\n",
                "is an absolute path");
  fs::create_symlink("/etc/passwd", path("link.raw"));
  expectRefused("link.mhd", meta + "link.raw\n", "resolves to /etc/passwd, outside the header's folder");
}

TEST_F(Cli, InfoRefusesFilePatternsThatMisreadOrCrashed) {
  const std::string meta = "ObjectType = Image\nNDims = 3\nDimSize = 4 4 3\nElementType = MET_UCHAR\nElementDataFile = ";
  std::ofstream(path("s1.raw"), std::ios::binary) << std::string(16, '\x07');
  const auto expectRefused = [&](const std::string& name, const std::string& dataFile, const std::string& problem) {
    std::ofstream(path(name)) << meta << dataFile << "\n";
    const auto r = run("info " + path(name));
    EXPECT_EQ(r.code, 1) << name << ": " << r.err;  // not 0 (garbage), not a signal
    EXPECT_EQ(lineCountOf(r.err), 1) << r.err;
    EXPECT_NE(r.err.find(name + ": "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(problem), std::string::npos) << r.err;
  };
  expectRefused("missing.mhd", "s%d.raw 1 3 1", "data file 's2.raw' does not exist");  // was exit 0, garbage
  expectRefused("empty-list.mhd", "LIST", "LIST names 0 data file(s); the image needs 3");  // was exit 0, zeros
  expectRefused("step0.mhd", "s%d.raw 1 3 0", "in steps of 0");                           // was SIGFPE
  expectRefused("format.mhd", "%s%s%s%s%n 1 3 1", "may hold only one %d");                // was SIGSEGV
}

TEST_F(Cli, TrainRefusesAnImageTooSmallForTheNetworkInOneLine) {
  Geometry g;
  g.size = {1, 1, 1};
  tessera::image::writeImage(Volume(g, 1.0f), path("dot.nii.gz"));
  tessera::image::writeImage(Volume(g, 1.0f), path("dot-labels.nii.gz"), tessera::image::PixelType::UInt8);
  const auto r = run("train --images " + path("dot.nii.gz") + " --labels " + path("dot-labels.nii.gz") + " --out " +
                     path("m.tsm") + " --epochs 1");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_EQ(lineCountOf(r.err), 1) << r.err;  // was a 20-line LibTorch trace
  EXPECT_NE(r.err.find(path("dot.nii.gz") + ": image 1x1x1"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("too small for the network: a 2D U-Net of depth 4 needs at least 16 voxels"), std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(path("m.tsm")));
}

namespace {
// A 4x3x2x`volumes` float NIfTI-1 file; volume t holds t+1 inside x < 2, 0 elsewhere.
void write4d(const fs::path& file, int volumes) {
  std::string h(352, '\0');
  const auto put16 = [&](size_t at, int16_t v) { std::memcpy(&h[at], &v, 2); };
  const auto putf = [&](size_t at, float v) { std::memcpy(&h[at], &v, 4); };
  const int32_t size = 348;
  std::memcpy(&h[0], &size, 4);
  put16(40, 4);
  put16(42, 4);
  put16(44, 3);
  put16(46, 2);
  put16(48, static_cast<int16_t>(volumes));
  put16(70, 16);
  put16(72, 32);
  for (int i = 0; i < 4; ++i) putf(76 + 4 * i, 1.0f);
  putf(108, 352.0f);
  std::memcpy(&h[344], "n+1", 4);
  std::string data;
  for (int t = 0; t < volumes; ++t)
    for (int i = 0; i < 24; ++i) {
      const float v = i % 4 < 2 ? static_cast<float>(t + 1) : 0.0f;
      data.append(reinterpret_cast<const char*>(&v), 4);
    }
  std::ofstream(file, std::ios::binary) << h << data;
}
}  // namespace

TEST_F(Cli, NanBackgroundIsRefusedWithAHintAndReadWithNanAs) {
  Geometry g;
  g.size = {4, 4, 2};
  Volume v(g, 1.0f);
  v.at(0, 0, 0) = std::numeric_limits<float>::quiet_NaN();
  tessera::image::writeImage(v, path("nan.nrrd"));
  auto r = run("info " + path("nan.nrrd"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find(path("nan.nrrd") + ": contains NaN at voxel (0,0,0)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--nan-as VALUE"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  r = run("info --nan-as 0 " + path("nan.nrrd"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("values:     0 .. 1"), std::string::npos) << r.out;
  r = run("evaluate --json --nan-as 0 --pred " + path("nan.nrrd") + " --truth " + path("nan.nrrd"));
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* command : {"train", "predict", "evaluate", "info"}) {
    r = run(std::string(command) + " --help");
    EXPECT_NE(r.out.find("--nan-as"), std::string::npos) << command;
    EXPECT_NE(r.out.find("--volume"), std::string::npos) << command;
  }
}

TEST_F(Cli, FourDImagesAreDescribedAndNeedVolumeElsewhere) {
  write4d(path("series.nii"), 3);
  auto r = run("info " + path("series.nii"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("size:       4 x 3 x 2 x 3 (4D: 3 volumes of 24 voxels)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("values:     0 .. 1 (volume 0)"), std::string::npos) << r.out;
  r = run("info --volume 2 " + path("series.nii"));
  EXPECT_NE(r.out.find("values:     0 .. 3 (volume 2)"), std::string::npos) << r.out;
  r = run("evaluate --pred " + path("series.nii") + " --truth " + path("series.nii"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find(path("series.nii") + ": image is 4D (4x3x2x3, 3 volumes); pass --volume N (0 to 2)"),
            std::string::npos)
      << r.err;
  r = run("evaluate --json --volume 0 --pred " + path("series.nii") + " --truth " + path("series.nii"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_DOUBLE_EQ(nlohmann::json::parse(r.out)["labels"]["1"]["dice"].get<double>(), 1.0);
  r = run("info --volume 3 " + path("series.nii"));
  EXPECT_NE(r.err.find("--volume 3 is out of range: the image has 3 volumes (0 to 2)"), std::string::npos) << r.err;
}

TEST_F(Cli, InfoOnOneDicomFileReadsItsSeries) {
  const fs::path ct = "/usr/lib/python3/dist-packages/pydicom/data/test_files/CT_small.dcm";
  if (!fs::exists(ct)) GTEST_SKIP() << "python3-pydicom's test files are not installed";
  fs::copy_file(ct, path("slice.dcm"));
  std::ofstream(path("notes.txt")) << "not an image\n";
  auto r = run("info " + path("slice.dcm"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("size:       128 x 128 x 1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("modality:   CT"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("read as:    DICOM series 1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322: 1 slice found in " +
                       dir_.string()),
            std::string::npos)
      << r.out;
}

// GDCM's JPEG 2000 decoder prints to stderr on its own; the error stays one line.
TEST_F(Cli, UndecodableDicomFileIsOneLine) {
  const fs::path j2k = "/usr/lib/python3/dist-packages/pydicom/data/test_files/JPEG2000-embedded-sequence-delimiter.dcm";
  if (!fs::exists(j2k)) GTEST_SKIP() << "python3-pydicom's test files are not installed";
  fs::copy_file(j2k, path("broken.dcm"));
  const auto r = run("info " + path("broken.dcm"));
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(r.err.rfind("tessera: error: " + path("broken.dcm") + ": ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}
