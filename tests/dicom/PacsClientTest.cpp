// The PACS client against a real Orthanc on loopback, cross-checked with DCMTK's findscu.
#include <filesystem>
#include <fstream>
#include <memory>

#include <gtest/gtest.h>

#include "DicomTestSupport.h"
#include "OrthancFixture.h"
#include "tessera/common/Error.h"
#include "tessera/dicom/DicomModelCodec.h"
#include "tessera/dicom/DicomUids.h"
#include "tessera/dicom/PacsClient.h"
#include "tessera/image/ImageIO.h"

using namespace tessera;
namespace fs = std::filesystem;

namespace {

using test::codeOf;

dicom::ModelQuery query(std::string modality, std::string anatomy = "", std::string disease = "", std::string task = "") {
  dicom::ModelQuery q;
  q.modality = std::move(modality);
  q.anatomy = std::move(anatomy);
  q.disease = std::move(disease);
  q.task = std::move(task);
  return q;
}

model::Model liverModel() {
  auto m = test::dicomTestModel("liver-seg", 0);
  m.task.modality = "CT";
  m.task.anatomy = "LIVER";
  m.task.disease = "metastasis";
  m.task.diseaseCode = {};
  return m;
}

class PacsClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!test::OrthancServer::available()) return;
    pacs_ = std::make_unique<test::OrthancServer>();
    dir_ = std::make_unique<test::TempDir>();
    // Three generations of one task in a folder, a model of another task named directly.
    fs::create_directories(dir_->path / "brain");
    for (int g = 1; g <= 3; ++g) {
      dicom::saveModelDicom(test::dicomTestModel("brain-seg", g), dir_->path / "brain" / ("g" + std::to_string(g) + ".dcm"));
    }
    std::ofstream(dir_->path / "brain" / "README.txt") << "not DICOM";
    dicom::saveModelDicom(liverModel(), dir_->path / "liver.dcm");
  }
  static void TearDownTestSuite() {
    pacs_.reset();
    dir_.reset();
  }
  void SetUp() override {
    if (!pacs_) GTEST_SKIP() << "Orthanc is not installed";
  }
  dicom::PacsClient client(std::string aet = "") const {
    auto address = dicom::PacsAddress::parse(pacs_->address());
    if (!aet.empty()) address.aet = aet;
    dicom::PacsOptions options;
    options.timeoutSeconds = 10;
    return dicom::PacsClient(address, options);
  }
  static void pushAll() {
    static bool pushed = false;
    if (pushed) return;
    dicom::PacsClient c(dicom::PacsAddress::parse(pacs_->address()));
    const auto result = c.push({dir_->path / "brain", dir_->path / "liver.dcm"});
    EXPECT_EQ(result.stored, 4u);
    EXPECT_EQ(result.skipped, 1u);
    pushed = true;
  }

  static std::unique_ptr<test::OrthancServer> pacs_;
  static std::unique_ptr<test::TempDir> dir_;
};

std::unique_ptr<test::OrthancServer> PacsClientTest::pacs_;
std::unique_ptr<test::TempDir> PacsClientTest::dir_;

}  // namespace

TEST(PacsAddress, ParsesAndRefuses) {
  const auto a = dicom::PacsAddress::parse("ORTHANC@pacs.example.org:4242");
  EXPECT_EQ(a.aet, "ORTHANC");
  EXPECT_EQ(a.host, "pacs.example.org");
  EXPECT_EQ(a.port, 4242);
  for (const char* bad : {"ORTHANC", "@host:1", "A@host", "A@host:0", "A@host:70000", "A@:4242", "WAYTOOLONGAETITLE1@h:1"}) {
    EXPECT_EQ(codeOf([&] { dicom::PacsAddress::parse(bad); }), ErrorCode::BadRequest) << bad;
  }
}

TEST_F(PacsClientTest, EchoAnswers) { EXPECT_NO_THROW(client().echo()); }

TEST_F(PacsClientTest, WrongCalledAeTitleIsRejected) {
  std::string message;
  EXPECT_EQ(codeOf([&] { client("NOTTHEPACS").echo(); }, &message), ErrorCode::Rejected);
  EXPECT_NE(message.find("association rejected"), std::string::npos) << message;
  EXPECT_NE(message.find("NOTTHEPACS"), std::string::npos) << message;
}

TEST_F(PacsClientTest, NobodyListeningIsUnreachable) {
  auto address = dicom::PacsAddress::parse("X@127.0.0.1:" + std::to_string(test::freeLoopbackPort()));
  std::string message;
  EXPECT_EQ(codeOf([&] { dicom::PacsClient(address).echo(); }, &message), ErrorCode::Unreachable);
  EXPECT_NE(message.find("cannot connect"), std::string::npos) << message;
}

TEST_F(PacsClientTest, FindsModelsByModalityAnatomyAndDisease) {
  pushAll();
  const auto all = client().findModels({});
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0].task, "brain-seg");
  EXPECT_EQ(all[0].generation, 1);
  EXPECT_EQ(all[2].generation, 3);
  EXPECT_EQ(all[2].seriesUid, dicom::modelSeriesUid("brain-seg", 3));
  EXPECT_EQ(all[2].studyUid, dicom::modelStudyUid("brain-seg"));
  EXPECT_EQ(all[2].anatomy, "BRAIN");
  EXPECT_EQ(all[2].disease, "glioma");
  EXPECT_EQ(all[3].task, "liver-seg");
  EXPECT_EQ(all[3].modality, "CT");

  EXPECT_EQ(client().findModels(query("MR")).size(), 3u);
  EXPECT_EQ(client().findModels(query("CT")).size(), 1u);
  EXPECT_EQ(client().findModels(query("", "brain")).size(), 3u);
  EXPECT_EQ(client().findModels(query("", "LIVER")).size(), 1u);
  EXPECT_EQ(client().findModels(query("", "", "glioma")).size(), 3u);
  EXPECT_EQ(client().findModels(query("", "", "metastasis")).size(), 1u);
  EXPECT_EQ(client().findModels(query("CT", "BRAIN")).size(), 0u);
  EXPECT_EQ(client().findModels(query("", "", "", "liver-seg")).size(), 1u);
}

TEST_F(PacsClientTest, FindscuSeesTheSameSeries) {
  if (!fs::exists("/usr/bin/findscu")) GTEST_SKIP() << "DCMTK's findscu is not installed";
  pushAll();
  test::TempDir out;
  const auto result = test::runCommand("/usr/bin/findscu -S -X -od " + out.path.string() + " -aet FINDSCU -aec " +
                                       pacs_->aet() + " -k QueryRetrieveLevel=SERIES -k StudyInstanceUID " +
                                       "-k SeriesInstanceUID -k SeriesNumber -k Modality=MR -k BodyPartExamined=BRAIN " +
                                       "127.0.0.1 " + std::to_string(pacs_->dicomPort()));
  ASSERT_EQ(result.status, 0) << result.output;
  size_t answers = 0;
  std::string uids;
  for (const auto& entry : fs::directory_iterator(out.path)) {
    ++answers;
    uids += test::runCommand("/usr/bin/dcmdump +P SeriesInstanceUID " + entry.path().string()).output;
  }
  EXPECT_EQ(answers, 3u);
  for (int g = 1; g <= 3; ++g) EXPECT_NE(uids.find(dicom::modelSeriesUid("brain-seg", g)), std::string::npos) << uids;
}

TEST_F(PacsClientTest, PullsTheNewestGenerationOrTheOneAsked) {
  pushAll();
  const auto newest = client().pullModel("brain-seg");
  EXPECT_EQ(newest.generation, 3);
  EXPECT_EQ(model::encodeModel(newest), model::encodeModel(test::dicomTestModel("brain-seg", 3)));
  const auto second = client().pullModel("brain-seg", 2);
  EXPECT_EQ(second.weightsSha256(), test::dicomTestModel("brain-seg", 2).weightsSha256());
  const auto liver = client().pullModel("liver-seg");
  EXPECT_EQ(model::encodeModel(liver), model::encodeModel(liverModel()));
}

TEST_F(PacsClientTest, NoMatchIsNotFound) {
  pushAll();
  std::string message;
  EXPECT_EQ(codeOf([&] { client().pullModel("brain-seg", 7); }, &message), ErrorCode::NotFound);
  EXPECT_NE(message.find("generations there: 1, 2, 3"), std::string::npos) << message;
  EXPECT_EQ(codeOf([&] { client().pullModel("no-such-task"); }, &message), ErrorCode::NotFound);
  EXPECT_NE(message.find("no model of task 'no-such-task'"), std::string::npos) << message;
}

TEST_F(PacsClientTest, TwoObjectsInOneGenerationAreAConflict) {
  // Another model claiming the same task and generation: same series, another instance.
  auto rival = test::dicomTestModel("twin-seg", 4);
  const auto original = rival;
  rival.weights[0].values[0] += 1.0f;
  test::TempDir dir;
  dicom::saveModelDicom(original, dir.path / "a.dcm");
  dicom::saveModelDicom(rival, dir.path / "b.dcm");
  client().push({dir.path});
  std::string message;
  EXPECT_EQ(codeOf([&] { client().pullModel("twin-seg"); }, &message), ErrorCode::Conflict);
  EXPECT_NE(message.find("holds 2 objects"), std::string::npos) << message;
}

TEST_F(PacsClientTest, AnImageInAModelStudyIsNotATesseraModel) {
  const fs::path ct = "/usr/lib/python3/dist-packages/pydicom/data/test_files/CT_small.dcm";
  if (!fs::exists(ct)) GTEST_SKIP() << "pydicom's test files are not installed";
  test::TempDir dir;
  const std::string script = "import sys, pydicom\n"
                             "d = pydicom.dcmread(sys.argv[1])\n"
                             "d.StudyInstanceUID = sys.argv[2]\n"
                             "d.StudyDescription = 'foreign-task'\n"
                             "d.SeriesNumber = 5\n"
                             "d.Manufacturer = 'Tessera'\n"
                             "d.save_as(sys.argv[3])\n";
  std::ofstream(dir.path / "make.py") << script;
  const auto made = test::runCommand("/usr/bin/python3 " + (dir.path / "make.py").string() + " " + ct.string() + " " +
                                     dicom::modelStudyUid("foreign-task") + " " + (dir.path / "ct.dcm").string());
  ASSERT_EQ(made.status, 0) << made.output;
  client().push({dir.path / "ct.dcm"});
  std::string message;
  EXPECT_EQ(codeOf([&] { client().pullModel("foreign-task"); }, &message), ErrorCode::BadModel);
  EXPECT_NE(message.find("not a Tessera model"), std::string::npos) << message;
}

TEST_F(PacsClientTest, PushingAFileThatIsNotDicomIsRefused) {
  test::TempDir dir;
  std::ofstream(dir.path / "x.dcm") << "hello";
  std::string message;
  EXPECT_EQ(codeOf([&] { client().push({dir.path / "x.dcm"}); }, &message), ErrorCode::BadRequest);
  EXPECT_NE(message.find("not a DICOM Part 10 file"), std::string::npos) << message;
}

TEST(PacsSeriesUrl, ParsesAndRefuses) {
  const auto u = dicom::PacsSeriesUrl::parse("pacs://PACS@10.0.0.1:104/1.2.3/1.2.3.4");
  EXPECT_EQ(u.pacs.describe(), "PACS@10.0.0.1:104");
  EXPECT_EQ(u.studyUid, "1.2.3");
  EXPECT_EQ(u.seriesUid, "1.2.3.4");
  EXPECT_TRUE(dicom::PacsSeriesUrl::parse("pacs://PACS@h:1/1.2").seriesUid.empty());
  for (const char* bad : {"pacs://PACS@h:1", "pacs://PACS@h:1/", "pacs://PACS@h:1/abc", "pacs://h:1/1.2", "pacs://P@h:1/1.2/x"}) {
    EXPECT_EQ(codeOf([&] { dicom::PacsSeriesUrl::parse(bad); }), ErrorCode::BadRequest) << bad;
  }
}

TEST_F(PacsClientTest, RetrievesAnImageSeriesWithItsGeometry) {
  if (!fs::exists("/usr/bin/python3")) GTEST_SKIP() << "no /usr/bin/python3";
  test::TempDir dir;
  const fs::path series = dir.path / "series";
  ASSERT_EQ(test::runCommand("/usr/bin/python3 " + (fs::path(TESSERA_DICOM_TEST_DIR) / "make_series.py").string() + " " +
                             series.string() + " 1").status, 0);
  const auto [study, seriesUid] = test::studyAndSeries(series / "slice000.dcm");
  ASSERT_FALSE(study.empty());
  EXPECT_EQ(client().push({series}).stored, 8u);
  EXPECT_EQ(client().retrieveSeries(study, "", dir.path / "fetched"), 8u);  // the study's only series
  const auto local = image::readImage(series), fetched = image::readImage(dir.path / "fetched");
  EXPECT_TRUE(local.geometry.sameGrid(fetched.geometry)) << local.geometry.describe() << " vs " << fetched.geometry.describe();
  EXPECT_EQ(local.voxels, fetched.voxels);
  EXPECT_EQ(codeOf([&] { client().retrieveSeries(study, seriesUid + "9", dir.path / "none"); }), ErrorCode::NotFound);
}

TEST(PacsModelSelection, PicksTheNewestGenerationOfTheBestMatchOrSaysWhyNot) {
  if (!test::OrthancServer::available()) GTEST_SKIP() << "Orthanc is not installed";
  test::OrthancServer pacs;
  test::TempDir dir;
  auto save = [&](model::Model m, const std::string& disease) {
    m.task.disease = disease;
    dicom::saveModelDicom(m, dir.path / (m.task.name + std::to_string(m.generation) + ".dcm"));
  };
  save(test::dicomTestModel("brain-seg", 1), "glioma");
  save(test::dicomTestModel("brain-seg", 2), "glioma");
  save(test::dicomTestModel("brainmet-seg", 1), "metastasis");
  save(liverModel(), "metastasis");
  const dicom::PacsClient client(dicom::PacsAddress::parse(pacs.address()));
  ASSERT_EQ(client.push({dir.path}).stored, 4u);

  auto choice = client.selectModel({"MR", "BRAIN", "glioma"});
  EXPECT_EQ(choice.model.task, "brain-seg");
  EXPECT_EQ(choice.model.generation, 2);
  EXPECT_EQ(choice.reason, "task brain-seg generation 2: modality MR, body part BRAIN, disease glioma match");
  EXPECT_EQ(client.selectModel({"MR", "brain", "Metastasis"}).model.task, "brainmet-seg");
  choice = client.selectModel({"CT", "", ""});
  EXPECT_EQ(choice.model.task, "liver-seg");
  EXPECT_NE(choice.reason.find("names no body part"), std::string::npos) << choice.reason;

  std::string message;
  EXPECT_EQ(codeOf([&] { client.selectModel({"MR", "BRAIN", ""}); }, &message), ErrorCode::Conflict);
  EXPECT_NE(message.find("brain-seg, brainmet-seg"), std::string::npos) << message;
  EXPECT_EQ(codeOf([&] { client.selectModel({"MR", "KNEE", "glioma"}); }, &message), ErrorCode::NotFound);
  EXPECT_NE(message.find("no Tessera model for MR KNEE (glioma)"), std::string::npos) << message;
  EXPECT_EQ(codeOf([&] { client.selectModel({"PT", "BRAIN", ""}); }), ErrorCode::NotFound);
}
