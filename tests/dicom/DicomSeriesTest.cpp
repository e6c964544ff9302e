// writeDicomSeries: a volume written as one instance per slice reads back (through ITK/GDCM,
// as `tessera predict --in DIR` reads it) on the same grid with the same values, oblique too.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "tessera/dicom/DicomSeries.h"
#include "tessera/image/ImageIO.h"

namespace tessera::dicom {
namespace {

namespace fs = std::filesystem;

image::Volume obliquePhantom(bool fractional) {
  image::Geometry g;
  g.size = {12, 10, 6};
  g.spacing = {0.8, 0.9, 2.5};
  g.origin = {-10, 12.5, 30};
  const double a = 20 * M_PI / 180;
  // Columns: x axis, y axis (tilted about x), their cross product.
  g.direction = {1, 0, 0, 0, std::cos(a), -std::sin(a), 0, std::sin(a), std::cos(a)};
  image::Volume v(g);
  for (int64_t z = 0; z < 6; ++z)
    for (int64_t y = 0; y < 10; ++y)
      for (int64_t x = 0; x < 12; ++x) v.at(x, y, z) = float(x + 20 * y + 300 * z) * (fractional ? 0.37f : 1.0f);
  return v;
}

class DicomSeriesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("tessera-series-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(DicomSeriesTest, AnObliqueSeriesReadsBackOnTheSameGridWithTheSameValues) {
  const image::Volume v = obliquePhantom(false);
  const DicomSeriesInfo info = writeDicomSeries(v, dir_);
  EXPECT_EQ(info.instances, 6u);
  const image::Volume back = image::readImage(dir_);
  EXPECT_TRUE(back.geometry.sameGrid(v.geometry)) << back.source;
  ASSERT_EQ(back.voxels.size(), v.voxels.size());
  for (size_t i = 0; i < v.voxels.size(); ++i) ASSERT_EQ(back.voxels[i], v.voxels[i]) << "voxel " << i;
  EXPECT_EQ(back.modality, "MR");
}

TEST_F(DicomSeriesTest, FractionalValuesAreRescaledWithinOneStoredStep) {
  const image::Volume v = obliquePhantom(true);
  writeDicomSeries(v, dir_);
  const image::Volume back = image::readImage(dir_);
  ASSERT_TRUE(back.geometry.sameGrid(v.geometry));
  const auto [lo, hi] = v.valueRange();
  const double step = (double(hi) - lo) / 4095;
  for (size_t i = 0; i < v.voxels.size(); ++i) ASSERT_NEAR(back.voxels[i], v.voxels[i], step * 0.51 + 1e-3) << "voxel " << i;
}

}  // namespace
}  // namespace tessera::dicom
