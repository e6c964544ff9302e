// `tessera bench interactive`: bad arguments are one-line errors before any work (no model is
// loaded, no image read, when the arguments alone are wrong).
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "RunTessera.h"

#include "tessera/image/ImageIO.h"

namespace {

namespace fs = std::filesystem;

using tessera::test::runTessera;

int lines(const std::string& text) { return static_cast<int>(std::count(text.begin(), text.end(), '\n')); }

class BenchCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("tessera-bench-cli-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    tessera::image::Geometry g;
    g.size = {8, 8, 4};
    for (const char* name : {"a.nii.gz", "b.nii.gz", "la.nii.gz"}) {
      tessera::image::writeImage(tessera::image::Volume(g, 1.0f), dir_ / name);
    }
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

TEST_F(BenchCli, MissingLabelsOptionIsAUsageError) {
  const auto r = runTessera("bench interactive --model " + path("none.tsm") + " --images " + path("a.nii.gz") + " " +
                         path("b.nii.gz"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.text.find("--labels"), std::string::npos) << r.text;
}

TEST_F(BenchCli, ImageAndLabelCountsMustMatch) {
  const auto r = runTessera("bench interactive --model " + path("none.tsm") + " --images " + path("a.nii.gz") + " " +
                         path("b.nii.gz") + " --labels " + path("la.nii.gz"));
  EXPECT_EQ(r.code, 2) << r.text;
  EXPECT_NE(r.text.find("--images gives 2 file(s) but --labels 1"), std::string::npos) << r.text;
  EXPECT_EQ(lines(r.text), 1) << r.text;
}

TEST_F(BenchCli, MissingLabelFileIsNamed) {
  const auto r = runTessera("bench interactive --model " + path("none.tsm") + " --images " + path("a.nii.gz") + " " +
                         path("b.nii.gz") + " --labels " + path("la.nii.gz") + " " + path("lb.nii.gz"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.text.find("lb.nii.gz"), std::string::npos) << r.text;
  EXPECT_EQ(lines(r.text), 1) << r.text;
}

TEST_F(BenchCli, OptionsOutOfRangeAreRefusedBeforeReading) {
  const std::string base = "bench interactive --model " + path("none.tsm") + " --images " + path("a.nii.gz") + " " +
                           path("b.nii.gz") + " --labels " + path("la.nii.gz") + " " + path("la.nii.gz");
  auto r = runTessera(base + " --learn-cases 2");
  EXPECT_EQ(r.code, 2) << r.text;
  EXPECT_NE(r.text.find("--learn-cases 2"), std::string::npos) << r.text;
  r = runTessera(base + " --plot " + path("dice.jpg"));
  EXPECT_EQ(r.code, 2) << r.text;
  EXPECT_NE(r.text.find("--plot"), std::string::npos) << r.text;
  r = runTessera("bench interactive --model " + path("none.tsm") + " --images " + path("a.nii.gz") + " --labels " +
              path("la.nii.gz"));
  EXPECT_EQ(r.code, 2) << r.text;
  EXPECT_NE(r.text.find("at least 2"), std::string::npos) << r.text;
  // Arguments fine, model missing: named, after the arguments were checked.
  r = runTessera(base);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.text.find("none.tsm"), std::string::npos) << r.text;
}

}  // namespace
