// Reads every NIfTI/Analyze file of nibabel's test data and every DICOM file of pydicom's (the
// Debian packages python3-nibabel and python3-pydicom) and compares size, spacing, origin and
// direction with those libraries' own reading (reference_geometry.py prints it as JSON). A file
// Tessera refuses must be refused in one line naming it. Skipped where neither folder exists.

#include <cstdio>
#include <iostream>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "TestSupport.h"
#include "tessera/image/ImageIO.h"

namespace tessera::image {
namespace {

namespace fs = std::filesystem;

const fs::path kNibabelData = "/usr/lib/python3/dist-packages/nibabel/tests/data";
const fs::path kPydicomData = "/usr/lib/python3/dist-packages/pydicom/data/test_files";

nlohmann::json referenceGeometry(const fs::path& niftiDir = kNibabelData, const fs::path& dicomDir = kPydicomData) {
  const std::string cmd = "/usr/bin/python3 '" + std::string(TESSERA_IMAGE_TEST_DIR) + "/reference_geometry.py' '" +
                          niftiDir.string() + "' '" + dicomDir.string() + "' 2>/dev/null";
  std::string out;
  if (FILE* pipe = popen(cmd.c_str(), "r")) {
    char buffer[4096];
    size_t n = 0;
    while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
    pclose(pipe);
  }
  return nlohmann::json::parse(out.empty() ? "{}" : out, nullptr, false);
}

struct Tally {
  int compared = 0, refused = 0, readOnlyByTessera = 0;
};

// Tessera's refusal: one line that names the file.
void expectCleanRefusal(const fs::path& file, const std::string& message) {
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_NE(message.find(file.filename().string()), std::string::npos) << message;
}

TEST(ReferenceData, NibabelAndPydicomTestFilesReadAsTheyDo) {
  if (!fs::exists(kNibabelData) && !fs::exists(kPydicomData)) GTEST_SKIP() << "no nibabel or pydicom test data";
  const nlohmann::json reference = referenceGeometry();
  ASSERT_TRUE(reference.is_object() && !reference.empty()) << "reference_geometry.py printed nothing usable";
  Tally nifti, dicom;
  std::set<std::string> refusedButReadable;
  ReadOptions options;
  options.volume = 0;  // 4D: the first volume
  options.replaceNaN = true;
  for (const auto& [name, ref] : reference.items()) {
    const fs::path file = name;
    const bool isDicom = file.extension() == ".dcm";
    Tally& tally = isDicom ? dicom : nifti;
    SCOPED_TRACE(file.string());
    Volume v;
    try {
      v = readImage(file, options);
    } catch (const Error& e) {
      expectCleanRefusal(file, e.what());
      ++tally.refused;
      const bool scalar = !ref.contains("samples") || ref["samples"] == 1;
      if (!ref.contains("error") && scalar) refusedButReadable.insert(file.filename().string() + ": " + e.what());
      continue;
    }
    if (ref.contains("error")) {
      ++tally.readOnlyByTessera;
      continue;
    }
    const Geometry& g = v.geometry;
    if (!isDicom) {
      for (int k = 0; k < 3; ++k) {
        EXPECT_EQ(g.size[k], ref["size"][k].get<int64_t>()) << k;
        EXPECT_NEAR(g.spacing[k], ref["spacing"][k].get<double>(), 1e-4) << k;
        EXPECT_NEAR(g.origin[k], ref["origin"][k].get<double>(), 1e-3) << k;
      }
      for (int i = 0; i < 9; ++i) EXPECT_NEAR(g.direction[i], ref["direction"][i].get<double>(), 1e-4) << i;
    } else {
      EXPECT_EQ(g.size[0], ref["size"][0].get<int64_t>());
      EXPECT_EQ(g.size[1], ref["size"][1].get<int64_t>());
      if (ref["frames"].get<int>() > 1) EXPECT_EQ(g.size[2], ref["frames"].get<int64_t>());
      // GDCM (as ITK reads DICOM) ignores Pixel Spacing in Secondary Capture objects, which
      // describe no patient geometry; pydicom reports the element.
      if (ref["sop"] != "1.2.840.10008.5.1.4.1.1.7") {
        EXPECT_NEAR(g.spacing[0], ref["spacing"][0].get<double>(), 1e-4);
        EXPECT_NEAR(g.spacing[1], ref["spacing"][1].get<double>(), 1e-4);
      }
      if (ref.contains("origin"))
        for (int k = 0; k < 3; ++k) EXPECT_NEAR(g.origin[k], ref["origin"][k].get<double>(), 1e-3) << k;
      if (ref.contains("row"))
        for (int k = 0; k < 3; ++k) {
          EXPECT_NEAR(g.direction[k * 3 + 0], ref["row"][k].get<double>(), 1e-4) << k;
          EXPECT_NEAR(g.direction[k * 3 + 1], ref["column"][k].get<double>(), 1e-4) << k;
        }
    }
    ++tally.compared;
  }
  std::cout << "NIfTI/Analyze: " << nifti.compared << " compared with nibabel, " << nifti.refused << " refused, "
            << nifti.readOnlyByTessera << " read where nibabel refuses\n"
            << "DICOM: " << dicom.compared << " compared with pydicom, " << dicom.refused << " refused, "
            << dicom.readOnlyByTessera << " read where pydicom refuses\n";
  for (const std::string& r : refusedButReadable) std::cout << "  refused, the reference reads it: " << r << "\n";
  if (fs::exists(kNibabelData / "example_nifti2.nii.gz")) {
    EXPECT_GE(nifti.compared, 7);  // NIfTI-1, NIfTI-2, 4D and NaN-background files
  }
  if (fs::exists(kPydicomData / "CT_small.dcm")) {
    EXPECT_GE(dicom.compared, 10);
  }
  // The scalar files pydicom reads and Tessera refuses: GDCM aborts the process on these (a Frame
  // Increment Pointer without Number of Frames), so they are refused beforehand.
  for (const std::string& r : refusedButReadable) EXPECT_NE(r.find("Frame Increment Pointer"), std::string::npos) << r;
}

// nibabel writes what its test folder lacks: .hdr/.img pairs (NIfTI-1, NIfTI-2, Analyze, SPM
// Analyze with an origin), byte-swapped and oblique NIfTI-2, a 4D pair.
TEST(ReferenceData, NibabelWrittenPairsReadAsNibabelDoes) {
  test::TempDir dir;
  const std::string script =
      "import sys, os, numpy as np, nibabel as nib\n"
      "d = sys.argv[1]; a = np.arange(60, dtype=np.float32).reshape(5, 4, 3)\n"
      "r = np.array([[0.8, -0.6, 0, 0], [0.6, 0.8, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])\n"
      "aff = r @ np.diag([1.5, 2, 3, 1]); aff[:3, 3] = [12, -7, 30]\n"
      "nib.save(nib.Nifti1Pair(a, aff), os.path.join(d, 'n1pair.hdr'))\n"
      "nib.save(nib.Nifti2Pair(a, aff), os.path.join(d, 'n2pair.hdr'))\n"
      "h = nib.Nifti2Header(endianness='>'); h.set_data_dtype(np.int16)\n"
      "nib.save(nib.Nifti2Image(a.astype(np.int16), aff, header=h), os.path.join(d, 'n2big.nii.gz'))\n"
      "nib.save(nib.Nifti1Pair(np.zeros((5, 4, 3, 2), np.float32), aff), os.path.join(d, 'fourd.hdr'))\n"
      "h = nib.AnalyzeHeader(); h.set_data_shape(a.shape); h.set_data_dtype(np.float32); h.set_zooms((2, 3, 4))\n"
      "nib.save(nib.AnalyzeImage(a, None, h), os.path.join(d, 'analyze.hdr'))\n"
      "h = nib.Spm99AnalyzeHeader(); h.set_data_shape(a.shape); h.set_data_dtype(np.float32)\n"
      "h.set_zooms((2, 3, 4)); h['origin'][:3] = [3, 2, 1]\n"
      "nib.save(nib.Spm99AnalyzeImage(a, None, h), os.path.join(d, 'spm.hdr'))\n";
  const std::string cmd = "/usr/bin/python3 -c \"" + script + "\" '" + dir.path().string() + "' 2>&1";
  if (std::system(cmd.c_str()) != 0) GTEST_SKIP() << "nibabel not installed";
  const nlohmann::json reference = referenceGeometry(dir.path(), dir.path());
  ASSERT_EQ(reference.size(), 6u) << reference.dump();
  ReadOptions options;
  options.volume = 0;
  for (const auto& [name, ref] : reference.items()) {
    SCOPED_TRACE(name);
    ASSERT_FALSE(ref.contains("error")) << ref.dump();
    const Volume v = readImage(name, options);
    for (int k = 0; k < 3; ++k) {
      EXPECT_EQ(v.geometry.size[k], ref["size"][k].get<int64_t>()) << k;
      EXPECT_NEAR(v.geometry.spacing[k], ref["spacing"][k].get<double>(), 1e-5) << k;
      EXPECT_NEAR(v.geometry.origin[k], ref["origin"][k].get<double>(), 1e-4) << k;
    }
    for (int i = 0; i < 9; ++i) EXPECT_NEAR(v.geometry.direction[i], ref["direction"][i].get<double>(), 1e-5) << i;
    if (name.find("fourd") == std::string::npos) EXPECT_EQ(v.at(4, 3, 2), 59.0f);
    else EXPECT_EQ(v.volumes, 2);
  }
}

}  // namespace
}  // namespace tessera::image
