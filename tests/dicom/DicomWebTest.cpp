// The DICOMweb client (STOW-RS, QIDO-RS, WADO-RS) against Orthanc's DICOMweb plugin.
#include <filesystem>

#include <gtest/gtest.h>

#include "DicomTestSupport.h"
#include "OrthancFixture.h"
#include "tessera/common/Error.h"
#include "tessera/dicom/DicomModelCodec.h"
#include "tessera/dicom/DicomWebClient.h"

using namespace tessera;
namespace fs = std::filesystem;

using test::codeOf;

TEST(DicomWeb, AddressIsChecked) {
  EXPECT_EQ(dicom::DicomWebClient("dicomweb+http://127.0.0.1:8042/dicom-web/").describe(), "http://127.0.0.1:8042/dicom-web/");
  for (const char* bad : {"http://h/dicom-web", "dicomweb+ftp://h/x", "dicomweb+http://"}) {
    EXPECT_EQ(codeOf([&] { dicom::DicomWebClient c(bad); }), ErrorCode::BadRequest) << bad;
  }
}

TEST(DicomWeb, StoresFindsAndRetrievesModels) {
  if (!test::OrthancServer::available() || !fs::exists(test::kDicomWebPlugin)) GTEST_SKIP() << "Orthanc or its DICOMweb plugin missing";
  test::OrthancOptions options;
  options.dicomWeb = true;
  test::OrthancServer pacs(options);
  test::TempDir dir;
  for (int g = 1; g <= 2; ++g) dicom::saveModelDicom(test::dicomTestModel("brain-seg", g), dir.path / ("g" + std::to_string(g) + ".dcm"));
  auto liver = test::dicomTestModel("liver-seg", 0);
  liver.task.modality = "CT";
  liver.task.anatomy = "LIVER";
  liver.task.disease = "metastasis";
  dicom::saveModelDicom(liver, dir.path / "liver.dcm");

  const dicom::DicomWebClient web("dicomweb+" + pacs.httpUrl() + "/dicom-web");
  EXPECT_EQ(web.push({dir.path}).stored, 3u);
  const auto all = web.findModels({});
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[1].task, "brain-seg");
  EXPECT_EQ(all[1].generation, 2);
  EXPECT_EQ(all[1].anatomy, "BRAIN");
  EXPECT_EQ(all[1].disease, "glioma");
  dicom::ModelQuery ct;
  ct.modality = "CT";
  EXPECT_EQ(web.findModels(ct).size(), 1u);
  dicom::ModelQuery glioma;
  glioma.disease = "glioma";
  glioma.anatomy = "brain";
  EXPECT_EQ(web.findModels(glioma).size(), 2u);

  EXPECT_EQ(model::encodeModel(web.pullModel("brain-seg")), model::encodeModel(test::dicomTestModel("brain-seg", 2)));
  EXPECT_EQ(web.pullModel("brain-seg", 1).weightsSha256(), test::dicomTestModel("brain-seg", 1).weightsSha256());
  std::string message;
  EXPECT_EQ(codeOf([&] { web.pullModel("brain-seg", 5); }, &message), ErrorCode::NotFound);
  EXPECT_NE(message.find("generations there: 1, 2"), std::string::npos) << message;

  const dicom::DicomWebClient nobody("dicomweb+http://127.0.0.1:" + std::to_string(test::freeLoopbackPort()) + "/dicom-web");
  EXPECT_EQ(codeOf([&] { nobody.findModels({}); }), ErrorCode::Unreachable);
}
