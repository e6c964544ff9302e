// Runs the real `tessera` binary the way a user does and checks exit codes and messages.
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tessera/image/ImageIO.h"

namespace fs = std::filesystem;
using tessera::image::Geometry;
using tessera::image::Volume;

namespace {

struct Result {
  int code = -1;
  std::string out, err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("tessera-cli-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  Result run(const std::string& args) {
    const auto out = dir_ / "stdout.txt", err = dir_ / "stderr.txt";
    const std::string cmd = std::string(TESSERA_BINARY) + " " + args + " >" + out.string() + " 2>" + err.string() +
                            " </dev/null";
    const int status = std::system(cmd.c_str());
    Result r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

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

  fs::path dir_;
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
