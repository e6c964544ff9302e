#include <filesystem>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "DicomTestSupport.h"
#include "tessera/common/AtomicFile.h"
#include "tessera/common/Error.h"
#include "tessera/dicom/DicomModelCodec.h"
#include "tessera/dicom/DicomUids.h"

using namespace tessera;
namespace fs = std::filesystem;

namespace {

std::string errorOf(std::string_view bytes, ErrorCode* code = nullptr) {
  try {
    dicom::decodeModelDicom(bytes, "m.dcm");
  } catch (const Error& e) {
    if (code) *code = e.code();
    return e.what();
  }
  return "";
}

}  // namespace

TEST(DicomModelCodec, RoundTripIsBitIdentical) {
  const auto original = test::dicomTestModel();
  const std::string tsm = model::encodeModel(original);
  const std::string dcm = dicom::encodeModelDicom(original);
  const auto back = dicom::decodeModelDicom(dcm, "m.dcm");
  EXPECT_EQ(back.weightsSha256(), original.weightsSha256());
  EXPECT_EQ(model::toJson(back.task), model::toJson(original.task));
  EXPECT_EQ(back.task.diseaseCode, original.task.diseaseCode);
  EXPECT_EQ(back.generation, 3);
  EXPECT_EQ(back.parentGeneration, std::optional<int64_t>(2));
  EXPECT_EQ(model::encodeModel(back), tsm);  // header JSON and weights, byte for byte
}

TEST(DicomModelCodec, RootModelWithoutCodesRoundTrips) {
  auto original = test::dicomTestModel("liver", 0);
  original.task.anatomy = "liver";
  original.task.disease = "";
  original.task.diseaseCode = {};
  original.task.modality = "";
  const std::string tsm = model::encodeModel(original);
  const auto back = dicom::decodeModelDicom(dicom::encodeModelDicom(original), "m.dcm");
  EXPECT_FALSE(back.parentGeneration.has_value());
  EXPECT_EQ(model::encodeModel(back), tsm);
}

TEST(DicomModelCodec, UidsAreDeterministicPerTaskAndGeneration) {
  EXPECT_EQ(dicom::modelStudyUid("brain"), dicom::modelStudyUid("brain"));
  EXPECT_NE(dicom::modelStudyUid("brain"), dicom::modelStudyUid("liver"));
  EXPECT_NE(dicom::modelSeriesUid("brain", 1), dicom::modelSeriesUid("brain", 2));
  const std::string uid = dicom::modelStudyUid(std::string(64, 'a'));
  EXPECT_TRUE(uid.starts_with("2.25."));
  EXPECT_LE(uid.size(), 64u);
  EXPECT_EQ(uid.find_first_not_of("0123456789.", 0), std::string::npos);
  EXPECT_LE(dicom::modelPatientId(std::string(64, 'x')).size(), 64u);
}

TEST(DicomModelCodec, DciodvfyReportsNoErrors) {
  if (!fs::exists("/usr/bin/dciodvfy")) GTEST_SKIP() << "dicom3tools' dciodvfy is not installed";
  test::TempDir dir;
  const fs::path file = dir.path / "model.dcm";
  dicom::saveModelDicom(test::dicomTestModel(), file);
  const auto result = test::runCommand("/usr/bin/dciodvfy " + file.string());
  EXPECT_EQ(result.output.find("Error"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("RawData"), std::string::npos) << result.output;
  if (std::getenv("TESSERA_SHOW_DCIODVFY")) std::cout << result.output;
}

TEST(DicomModelCodec, DciodvfyReportsNoErrorsForAModelWithoutAnatomy) {
  if (!fs::exists("/usr/bin/dciodvfy")) GTEST_SKIP() << "dicom3tools' dciodvfy is not installed";
  test::TempDir dir;
  const fs::path file = dir.path / "model.dcm";
  auto model = test::dicomTestModel();
  model.task.anatomy.clear();
  model.task.anatomyCode = {};
  dicom::saveModelDicom(model, file);
  const auto result = test::runCommand("/usr/bin/dciodvfy " + file.string());
  EXPECT_EQ(result.output.find("Error"), std::string::npos) << result.output;
}

TEST(DicomModelCodec, PydicomReadsTheStandardAttributes) {
  if (!fs::exists("/usr/bin/python3")) GTEST_SKIP() << "no /usr/bin/python3";
  test::TempDir dir;
  const fs::path file = dir.path / "model.dcm";
  dicom::saveModelDicom(test::dicomTestModel(), file);
  const std::string script =
      "import json, sys, pydicom\n"
      "d = pydicom.dcmread(sys.argv[1])\n"
      "r = d.AnatomicRegionSequence[0]\n"
      "a = d.AdmittingDiagnosesCodeSequence[0]\n"
      "print(json.dumps({'sop': d.SOPClassUID, 'modality': d.Modality, 'body': d.BodyPartExamined,\n"
      "  'region': [r.CodingSchemeDesignator, r.CodeValue, r.CodeMeaning], 'series': d.SeriesDescription,\n"
      "  'number': int(d.SeriesNumber), 'disease': [a.CodeValue, d.AdmittingDiagnosesDescription],\n"
      "  'creator': d[0x00990010].value, 'weights': len(d[0x00991010].value), 'sha': d[0x00991007].value}))\n";
  std::ofstream(dir.path / "read.py") << script;
  const auto result = test::runCommand("/usr/bin/python3 " + (dir.path / "read.py").string() + " " + file.string());
  ASSERT_EQ(result.status, 0) << result.output;
  const auto j = nlohmann::json::parse(result.output);
  EXPECT_EQ(j["sop"], dicom::kRawDataStorageUid);
  EXPECT_EQ(j["modality"], "MR");
  EXPECT_EQ(j["body"], "BRAIN");
  EXPECT_EQ(j["region"], nlohmann::json({"SCT", "12738006", "Brain"}));
  EXPECT_EQ(j["series"], "brain-seg generation 3");
  EXPECT_EQ(j["number"], 3);
  EXPECT_EQ(j["disease"], nlohmann::json({"393563007", "glioma"}));
  EXPECT_EQ(j["creator"], "TESSERA 1.0");
  const auto m = test::dicomTestModel();
  EXPECT_EQ(j["sha"], m.weightsSha256());
  EXPECT_EQ(j["weights"].get<size_t>(), common::encodeWeights(m.weights).size());
}

TEST(DicomModelCodec, TruncatedObjectIsRefused) {
  const std::string dcm = dicom::encodeModelDicom(test::dicomTestModel());
  for (size_t keep : {size_t{0}, size_t{100}, size_t{200}, dcm.size() / 2, dcm.size() - 1}) {
    ErrorCode code{};
    const std::string message = errorOf(dcm.substr(0, keep), &code);
    EXPECT_EQ(code, ErrorCode::BadModel) << keep << ": " << message;
    EXPECT_TRUE(message.starts_with("m.dcm: ")) << message;
  }
}

TEST(DicomModelCodec, WeightsNotMatchingTheirShaAreRefused) {
  std::string dcm = dicom::encodeModelDicom(test::dicomTestModel());
  dcm.back() = static_cast<char>(dcm.back() ^ 0x40);  // the weights are the last element
  EXPECT_NE(errorOf(dcm).find("SHA-256 does not match"), std::string::npos) << errorOf(dcm);
}

TEST(DicomModelCodec, PrivateBlockOfAnotherCreatorIsRefused) {
  std::string dcm = dicom::encodeModelDicom(test::dicomTestModel());
  const auto at = dcm.find("TESSERA 1.0");
  ASSERT_NE(at, std::string::npos);
  dcm.replace(at, 11, "ACMECO 9.99");
  const std::string message = errorOf(dcm);
  EXPECT_NE(message.find("not a Tessera model"), std::string::npos) << message;
  EXPECT_NE(message.find("ACMECO 9.99"), std::string::npos) << message;
}

TEST(DicomModelCodec, ForeignImageIsRefused) {
  const fs::path ct = "/usr/lib/python3/dist-packages/pydicom/data/test_files/CT_small.dcm";
  if (!fs::exists(ct)) GTEST_SKIP() << "pydicom's test files are not installed";
  try {
    dicom::loadModelDicom(ct);
    FAIL() << "a CT image was read as a model";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::BadModel);
    const std::string message = e.what();
    EXPECT_TRUE(message.starts_with(ct.string() + ": not a Tessera model: a DICOM object of SOP class CTImageStorage")) << message;
  }
}

TEST(DicomModelCodec, NonDicomFileIsRefused) {
  const std::string tsm = model::encodeModel(test::dicomTestModel());
  EXPECT_NE(errorOf(tsm).find("not a DICOM Part 10 file"), std::string::npos);
}
