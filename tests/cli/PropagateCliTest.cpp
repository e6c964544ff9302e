// `tessera propagate`: a proxy mask and its weights from three drawn slices of a drifting sphere,
// and a bad slice list as a one-line error that names the value and writes nothing.
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "RunTessera.h"

#include "tessera/image/ImageIO.h"
#include "tessera/image/Metrics.h"

namespace fs = std::filesystem;
using tessera::image::Geometry;
using tessera::image::Volume;

namespace {

using tessera::test::runTessera;

class PropagateCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("tessera-propagate-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // A sphere drifting along x as z grows, bright on a striped background; the annotated file
    // holds its mask on slices 6, 12 and 18 only.
    Geometry g;
    g.size = {48, 40, 24};
    g.spacing = {1.0, 1.0, 2.0};
    Volume image(g), annotated(g);
    truth_ = Volume(g);
    for (int64_t z = 0; z < 24; ++z)
      for (int64_t y = 0; y < 40; ++y)
        for (int64_t x = 0; x < 48; ++x) {
          const double dx = x - (16.0 + 0.6 * z), dy = y - 20.0, dz = (z - 12.0) * 1.4;
          const bool inside = dx * dx + dy * dy + dz * dz <= 11.0 * 11.0;
          image.at(x, y, z) = (inside ? 150.0f : 40.0f) + 10.0f * std::sin(0.6f * x + 0.4f * y);
          truth_.at(x, y, z) = inside ? 1.0f : 0.0f;
          if (z == 6 || z == 12 || z == 18) annotated.at(x, y, z) = truth_.at(x, y, z);
        }
    tessera::image::writeImage(image, path("image.nii.gz"));
    tessera::image::writeImage(annotated, path("drawn.nii.gz"), tessera::image::PixelType::UInt8);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
  Volume truth_;
};

}  // namespace

TEST_F(PropagateCli, WritesAProxyCloseToTheTruthAndItsWeights) {
  const auto r = runTessera("propagate --image " + path("image.nii.gz") + " --annotated " + path("drawn.nii.gz") +
                         " --slices 6,12,18 --out " + path("proxy.nii.gz") + " --weights-out " + path("w.nii.gz"));
  ASSERT_EQ(r.code, 0) << r.text;
  // 24 slices: reach 2 beyond the ends (10%), so slices 4..20 are covered, 14 of them propagated.
  EXPECT_NE(r.text.find("propagated 14 slices along axis 2 from 3 drawn (6,12,18)"), std::string::npos) << r.text;
  EXPECT_NE(r.text.find("labelled "), std::string::npos) << r.text;
  const auto proxy = tessera::image::readImage(path("proxy.nii.gz"));
  EXPECT_TRUE(proxy.geometry.sameGrid(truth_.geometry));
  EXPECT_GE(tessera::image::diceScore(proxy, truth_, 1), 0.9);
  const auto weights = tessera::image::readImage(path("w.nii.gz"));
  EXPECT_FLOAT_EQ(weights.at(0, 0, 12), 1.0f);
  EXPECT_FLOAT_EQ(weights.at(0, 0, 9), 0.25f);
  EXPECT_FLOAT_EQ(weights.at(0, 0, 20), 1.0f / 3.0f);
  EXPECT_FLOAT_EQ(weights.at(0, 0, 2), 0.0f);
}

TEST_F(PropagateCli, ASliceOutOfRangeIsOneLineNamingItAndWritesNothing) {
  const auto r = runTessera("propagate --image " + path("image.nii.gz") + " --annotated " + path("drawn.nii.gz") +
                         " --slices 6,24 --out " + path("proxy.nii.gz"));
  EXPECT_EQ(r.code, 2) << r.text;
  EXPECT_NE(r.text.find("--slices: slice 24 is out of range 0..23"), std::string::npos) << r.text;
  EXPECT_EQ(std::count(r.text.begin(), r.text.end(), '\n'), 1) << r.text;
  EXPECT_FALSE(fs::exists(path("proxy.nii.gz")));
}
