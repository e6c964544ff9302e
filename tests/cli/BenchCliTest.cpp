// `tessera bench interactive`: bad arguments are one-line errors before any work (no model is
// loaded, no image read, when the arguments alone are wrong).
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "tessera/image/ImageIO.h"

namespace {

namespace fs = std::filesystem;

struct Output {
  int code = -1;
  std::string text;  // stdout and stderr together
};

Output tessera(const std::string& args) {
  const std::string cmd = std::string(TESSERA_BINARY) + " " + args + " 2>&1 </dev/null";
  FILE* pipe = popen(cmd.c_str(), "r");
  Output out;
  if (!pipe) return out;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) out.text.append(buffer, n);
  const int status = pclose(pipe);
  out.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

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
  const auto r = tessera("bench interactive --model " + path("none.tsm") + " --images " + path("a.nii.gz") + " " +
                         path("b.nii.gz"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.text.find("--labels"), std::string::npos) << r.text;
}

TEST_F(BenchCli, ImageAndLabelCountsMustMatch) {
  const auto r = tessera("bench interactive --model " + path("none.tsm") + " --images " + path("a.nii.gz") + " " +
                         path("b.nii.gz") + " --labels " + path("la.nii.gz"));
  EXPECT_EQ(r.code, 2) << r.text;
  EXPECT_NE(r.text.find("--images gives 2 file(s) but --labels 1"), std::string::npos) << r.text;
  EXPECT_EQ(lines(r.text), 1) << r.text;
}

TEST_F(BenchCli, MissingLabelFileIsNamed) {
  const auto r = tessera("bench interactive --model " + path("none.tsm") + " --images " + path("a.nii.gz") + " " +
                         path("b.nii.gz") + " --labels " + path("la.nii.gz") + " " + path("lb.nii.gz"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.text.find("lb.nii.gz"), std::string::npos) << r.text;
  EXPECT_EQ(lines(r.text), 1) << r.text;
}

TEST_F(BenchCli, OptionsOutOfRangeAreRefusedBeforeReading) {
  const std::string base = "bench interactive --model " + path("none.tsm") + " --images " + path("a.nii.gz") + " " +
                           path("b.nii.gz") + " --labels " + path("la.nii.gz") + " " + path("la.nii.gz");
  auto r = tessera(base + " --learn-cases 2");
  EXPECT_EQ(r.code, 2) << r.text;
  EXPECT_NE(r.text.find("--learn-cases 2"), std::string::npos) << r.text;
  r = tessera(base + " --plot " + path("dice.jpg"));
  EXPECT_EQ(r.code, 2) << r.text;
  EXPECT_NE(r.text.find("--plot"), std::string::npos) << r.text;
  r = tessera("bench interactive --model " + path("none.tsm") + " --images " + path("a.nii.gz") + " --labels " +
              path("la.nii.gz"));
  EXPECT_EQ(r.code, 2) << r.text;
  EXPECT_NE(r.text.find("at least 2"), std::string::npos) << r.text;
  // Arguments fine, model missing: named, after the arguments were checked.
  r = tessera(base);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.text.find("none.tsm"), std::string::npos) << r.text;
}

}  // namespace
