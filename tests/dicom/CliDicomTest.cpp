// `tessera model` and `tessera pacs` through the real binary (skipped when it is not built:
// this test binary does not depend on it, so it stays free of LibTorch).
#include <algorithm>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "DicomTestSupport.h"
#include "OrthancFixture.h"
#include "tessera/common/AtomicFile.h"
#include "tessera/dicom/DicomModelCodec.h"
#include "tessera/image/ImageIO.h"

using namespace tessera;
namespace fs = std::filesystem;

namespace {

#ifdef TESSERA_CLI
const std::string kCli = TESSERA_CLI;
#else
const std::string kCli;
#endif

class CliDicomTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (kCli.empty() || !fs::exists(kCli)) GTEST_SKIP() << "the tessera binary is not built";
  }
  test::CommandResult tessera(const std::string& args) { return test::runCommand(kCli + " " + args); }
  static size_t lines(const std::string& text) { return static_cast<size_t>(std::count(text.begin(), text.end(), '\n')); }
  test::TempDir dir;
};

}  // namespace

TEST_F(CliDicomTest, ToDicomAndBackIsByteIdentical) {
  const fs::path tsm = dir.path / "m.tsm", dcm = dir.path / "m.dcm", back = dir.path / "back.tsm";
  model::saveModel(test::dicomTestModel(), tsm);
  auto r = tessera("model to-dicom " + tsm.string() + " --out " + dcm.string());
  ASSERT_EQ(r.status, 0) << r.output;
  r = tessera("model from-dicom " + dcm.string() + " --out " + back.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(common::readFile(back), common::readFile(tsm));
}

TEST_F(CliDicomTest, DamagedObjectIsOneLine) {
  const fs::path dcm = dir.path / "m.dcm";
  std::string bytes = dicom::encodeModelDicom(test::dicomTestModel());
  common::writeFileAtomically(dcm, bytes.substr(0, bytes.size() / 2));
  auto r = tessera("model from-dicom " + dcm.string() + " --out " + (dir.path / "x.tsm").string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_EQ(lines(r.output), 1u) << r.output;
  EXPECT_NE(r.output.find("tessera: error: " + dcm.string() + ": "), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir.path / "x.tsm"));
  // Foreign objects: DicomModelCodec.ForeignImageIsRefused; the CLI prints the same message.
}

TEST_F(CliDicomTest, PacsRoundTrip) {
  if (!test::OrthancServer::available()) GTEST_SKIP() << "Orthanc is not installed";
  test::OrthancServer pacs;
  const std::string at = " --pacs " + pacs.address();
  for (int g = 0; g <= 2; ++g) dicom::saveModelDicom(test::dicomTestModel("brain-seg", g), dir.path / ("g" + std::to_string(g) + ".dcm"));
  auto r = tessera("pacs push " + dir.path.string() + at);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("stored 3 object(s)"), std::string::npos) << r.output;

  r = tessera("pacs find-models --json --modality MR --anatomy BRAIN --disease glioma" + at);
  ASSERT_EQ(r.status, 0) << r.output;
  const auto found = nlohmann::json::parse(r.output);
  ASSERT_EQ(found.size(), 3u);
  EXPECT_EQ(found[2]["task"], "brain-seg");
  EXPECT_EQ(found[2]["generation"], 2);

  const fs::path out = dir.path / "pulled.tsm";
  r = tessera("pacs pull-model --task brain-seg --out " + out.string() + at);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(common::readFile(out), model::encodeModel(test::dicomTestModel("brain-seg", 2)));

  r = tessera("pacs echo --pacs WRONGAET@127.0.0.1:" + std::to_string(pacs.dicomPort()));
  EXPECT_EQ(r.status, 5) << r.output;  // rejected
  EXPECT_EQ(lines(r.output), 1u) << r.output;
  EXPECT_NE(r.output.find("association rejected"), std::string::npos) << r.output;
  r = tessera("pacs echo --timeout 5 --pacs X@127.0.0.1:" + std::to_string(test::freeLoopbackPort()));
  EXPECT_EQ(r.status, 6) << r.output;  // unreachable
  EXPECT_EQ(lines(r.output), 1u) << r.output;
}

TEST_F(CliDicomTest, PredictWritesASegMatchingTheNiftiPrediction) {
  if (!fs::exists("/usr/bin/python3")) GTEST_SKIP() << "no /usr/bin/python3";
  const fs::path series = dir.path / "series", tsm = dir.path / "m.tsm";
  auto r = test::runCommand("/usr/bin/python3 " + (fs::path(TESSERA_DICOM_TEST_DIR) / "make_series.py").string() + " " +
                            series.string() + " 1");
  ASSERT_EQ(r.status, 0) << r.output;
  // Untrained, with the head's weights scaled up so random features give a mixed label map.
  auto m = test::dicomTestModel("brain-seg", 1);
  for (auto& t : m.weights) {
    if (t.name == "head.weight") {
      for (size_t i = 0; i < t.values.size(); ++i) t.values[i] *= (i % 2 ? -1000.0f : 1000.0f);
    }
  }
  model::saveModel(m, tsm);
  r = tessera("predict --threads 1 --model " + tsm.string() + " --in " + series.string() + " --out " + (dir.path / "p.nii.gz").string());
  ASSERT_EQ(r.status, 0) << r.output;
  r = tessera("predict --threads 1 --model " + tsm.string() + " --in " + series.string() + " --out " + (dir.path / "p.dcm").string());
  ASSERT_EQ(r.status, 0) << r.output;
  std::string sources;
  for (const auto& e : fs::directory_iterator(series)) sources += " " + e.path().string();
  r = test::runCommand("/usr/bin/python3 " + (fs::path(TESSERA_DICOM_TEST_DIR) / "read_seg.py").string() + " " +
                       (dir.path / "p.dcm").string() + sources);
  ASSERT_EQ(r.status, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["segments"]["1"], "tumour \xc3\xa9" "dema");  // UTF-8 label kept
  const auto nifti = image::readImage(dir.path / "p.nii.gz");
  const auto& g = nifti.geometry;
  ASSERT_EQ(j["frames"].size(), static_cast<size_t>(g.size[2]));  // one foreground label
  int64_t mismatches = 0, set = 0;
  for (const auto& f : j["frames"]) {
    const auto index = g.pointToIndex({f["position"][0], f["position"][1], f["position"][2]});
    const int64_t z = std::llround(index[2]);
    ASSERT_NEAR(index[0], 0.0, 1e-3);
    ASSERT_NEAR(index[1], 0.0, 1e-3);
    ASSERT_NEAR(index[2], static_cast<double>(z), 1e-3);
    const std::string mask = f["mask"];
    for (int64_t y = 0; y < g.size[1]; ++y) {
      for (int64_t x = 0; x < g.size[0]; ++x) {
        const bool inSeg = mask[static_cast<size_t>(x + g.size[0] * y)] == '1';
        mismatches += inSeg != (std::lround(nifti.at(x, y, z)) == 1);
        set += inSeg;
      }
    }
  }
  EXPECT_EQ(mismatches, 0);
  // evaluate takes the SEG as a label map on the other image's grid.
  r = tessera("evaluate --json --pred " + (dir.path / "p.dcm").string() + " --truth " + (dir.path / "p.nii.gz").string());
  ASSERT_EQ(r.status, 0) << r.output;
  const auto metrics = nlohmann::json::parse(r.output);
  ASSERT_GT(set, 0);
  EXPECT_DOUBLE_EQ(metrics["labels"]["1"]["dice"].get<double>(), 1.0) << r.output;
}

TEST_F(CliDicomTest, PredictChoosesItsModelFetchesTheScanAndStoresTheSegBack) {
  if (!test::OrthancServer::available() || !fs::exists("/usr/bin/python3") || !fs::exists("/usr/bin/findscu")) {
    GTEST_SKIP() << "needs Orthanc, /usr/bin/python3 and findscu";
  }
  test::OrthancServer pacs;
  const fs::path series = dir.path / "series", model = dir.path / "m.dcm";
  ASSERT_EQ(test::runCommand("/usr/bin/python3 " + (fs::path(TESSERA_DICOM_TEST_DIR) / "make_series.py").string() + " " +
                             series.string() + " 0").status, 0);
  const auto [study, seriesUid] = test::studyAndSeries(series / "slice000.dcm");
  dicom::saveModelDicom(test::dicomTestModel("brain-seg", 1), model);
  auto r = tessera("pacs push " + series.string() + " " + model.string() + " --pacs " + pacs.address());
  ASSERT_EQ(r.status, 0) << r.output;
  // Model chosen by the scan's modality and body part; the study's only image series.
  r = tessera("predict --threads 1 --model pacs:auto --in pacs://" + pacs.address() + "/" + study + " --out " +
              (dir.path / "s.dcm").string() + " --store");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("model: task brain-seg generation 1: modality MR, body part BRAIN match"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("fetched 8 instance(s)"), std::string::npos) << r.output;
  test::TempDir answers;
  r = test::runCommand("/usr/bin/findscu -S -X -od " + answers.path.string() + " -aec " + pacs.aet() +
                       " -k QueryRetrieveLevel=SERIES -k StudyInstanceUID=" + study + " -k SeriesInstanceUID -k Modality=SEG" +
                       " 127.0.0.1 " + std::to_string(pacs.dicomPort()));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(std::distance(fs::directory_iterator(answers.path), fs::directory_iterator()), 1);  // the SEG, in the scan's study
}

TEST_F(CliDicomTest, PacsCommandsSpeakDicomWebToo) {
  if (!test::OrthancServer::available() || !fs::exists(test::kDicomWebPlugin)) GTEST_SKIP() << "Orthanc or its DICOMweb plugin missing";
  test::OrthancOptions options;
  options.dicomWeb = true;
  test::OrthancServer pacs(options);
  const std::string at = " --pacs dicomweb+" + pacs.httpUrl() + "/dicom-web";
  for (int g = 0; g <= 1; ++g) dicom::saveModelDicom(test::dicomTestModel("brain-seg", g), dir.path / ("g" + std::to_string(g) + ".dcm"));
  auto r = tessera("pacs push " + dir.path.string() + at);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("stored 2 object(s)"), std::string::npos) << r.output;
  const fs::path out = dir.path / "pulled.tsm";
  r = tessera("pacs pull-model --task brain-seg --out " + out.string() + at);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(common::readFile(out), model::encodeModel(test::dicomTestModel("brain-seg", 1)));
}
