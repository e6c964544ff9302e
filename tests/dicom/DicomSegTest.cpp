// DICOM SEG writing against dciodvfy and pydicom: frames decoded by pydicom must overlay the
// source slices voxel for voxel, also for an oblique series.
#include <filesystem>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "DicomTestSupport.h"
#include "tessera/common/Error.h"
#include "tessera/dicom/DicomSeg.h"
#include "tessera/image/ImageIO.h"

using namespace tessera;
namespace fs = std::filesystem;

namespace {

const fs::path kScripts = TESSERA_DICOM_TEST_DIR;

bool havePython() { return fs::exists("/usr/bin/python3"); }

// Two labels whose shapes change from slice to slice, so a misplaced frame shows.
image::Volume labelsFor(const image::Volume& scan) {
  image::Volume labels(scan.geometry, 0.0f);
  const auto& s = scan.geometry.size;
  for (int64_t z = 0; z < s[2]; ++z) {
    for (int64_t y = 0; y < s[1]; ++y) {
      for (int64_t x = 0; x < s[0]; ++x) {
        if (x >= z && x < z + 6 && y >= 2 && y < 9) labels.at(x, y, z) = 1.0f;
        if (y == (z + 11) % s[1] && x > 12) labels.at(x, y, z) = 2.0f;
      }
    }
  }
  return labels;
}

void checkSeg(bool oblique) {
  if (!havePython()) GTEST_SKIP() << "no /usr/bin/python3";
  test::TempDir dir;
  const fs::path series = dir.path / "series";
  auto made = test::runCommand("/usr/bin/python3 " + (kScripts / "make_series.py").string() + " " + series.string() +
                               (oblique ? " 1" : " 0"));
  ASSERT_EQ(made.status, 0) << made.output;
  const auto scan = image::readImage(series);
  ASSERT_EQ(scan.geometry.size[2], 8);
  const auto labels = labelsFor(scan);
  model::TaskInfo task;
  task.name = "brain-seg";
  task.anatomy = "BRAIN";
  task.labels = {{0, "background"}, {1, "brain"}, {2, "lesion"}};
  const fs::path out = dir.path / "seg.dcm";
  dicom::writeDicomSeg(labels, task, series, out);

  if (fs::exists("/usr/bin/dciodvfy")) {
    const auto v = test::runCommand("/usr/bin/dciodvfy " + out.string());
    EXPECT_EQ(v.output.find("Error"), std::string::npos) << v.output;
    EXPECT_NE(v.output.find("Segmentation"), std::string::npos) << v.output;
    if (std::getenv("TESSERA_SHOW_DCIODVFY")) std::cout << v.output;
  }
  std::string sources;
  for (const auto& e : fs::directory_iterator(series)) sources += " " + e.path().string();
  const auto r = test::runCommand("/usr/bin/python3 " + (kScripts / "read_seg.py").string() + " " + out.string() + sources);
  ASSERT_EQ(r.status, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["modality"], "SEG");
  EXPECT_EQ(j["segments"]["1"], "brain");
  EXPECT_EQ(j["segments"]["2"], "lesion");
  EXPECT_EQ(j["type"][0], "12738006");
  const auto& g = labels.geometry;
  ASSERT_EQ(j["frames"].size(), 2u * static_cast<size_t>(g.size[2]));
  for (const auto& f : j["frames"]) {
    const int segment = f["segment"];
    const std::array<double, 3> pos{f["position"][0], f["position"][1], f["position"][2]};
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(f["source_position"][i].get<double>(), pos[i], 1e-3);
    const auto index = g.pointToIndex(pos);
    const int64_t z = std::llround(index[2]);
    ASSERT_NEAR(index[2], static_cast<double>(z), 1e-3);
    ASSERT_GE(z, 0);
    ASSERT_LT(z, g.size[2]);
    const std::string mask = f["mask"];
    ASSERT_EQ(mask.size(), static_cast<size_t>(g.size[0] * g.size[1]));
    int64_t mismatches = 0;
    for (int64_t y = 0; y < g.size[1]; ++y) {
      for (int64_t x = 0; x < g.size[0]; ++x) {
        const bool expected = std::lround(labels.at(x, y, z)) == segment;
        mismatches += (mask[static_cast<size_t>(x + g.size[0] * y)] == '1') != expected;
      }
    }
    EXPECT_EQ(mismatches, 0) << "segment " << segment << " slice " << z;
  }
  // And back: the SEG read onto the scan's grid is the label map.
  const auto back = dicom::readDicomSeg(out, scan.geometry);
  EXPECT_EQ(back.voxels, labels.voxels);
  auto shifted = scan.geometry;
  shifted.origin[0] += 0.5 * shifted.spacing[0];
  try {
    dicom::readDicomSeg(out, shifted);
    ADD_FAILURE() << "a SEG was read onto a grid it does not lie on";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is not on a slice of the image"), std::string::npos) << e.what();
  }
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(j["orientation"][i].get<double>(), g.direction[static_cast<size_t>(i * 3)], 1e-5);
    EXPECT_NEAR(j["orientation"][i + 3].get<double>(), g.direction[static_cast<size_t>(i * 3 + 1)], 1e-5);
  }
}

}  // namespace

TEST(DicomSeg, AxialSeriesFramesOverlayTheirSlices) { checkSeg(false); }

TEST(DicomSeg, ObliqueSeriesFramesOverlayTheirSlices) { checkSeg(true); }

TEST(DicomSeg, LabelsOffTheSeriesGridAreRefused) {
  if (!havePython()) GTEST_SKIP() << "no /usr/bin/python3";
  test::TempDir dir;
  const fs::path series = dir.path / "series";
  ASSERT_EQ(test::runCommand("/usr/bin/python3 " + (kScripts / "make_series.py").string() + " " + series.string() + " 0").status, 0);
  auto labels = labelsFor(image::readImage(series));
  labels.geometry.origin[2] += 1.0;  // half a slice off
  try {
    dicom::writeDicomSeg(labels, {}, series, dir.path / "seg.dcm");
    FAIL() << "labels off the grid were written";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::BadImage);
    EXPECT_NE(std::string(e.what()).find("not on this series' grid"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir.path / "seg.dcm"));
}
