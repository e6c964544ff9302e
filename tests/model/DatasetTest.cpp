// Datasets in the layouts people bring: Tessera's images/ + labels/, nnU-Net v2 raw datasets and
// Medical Segmentation Decathlon folders.

#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tessera/common/Error.h"
#include "tessera/image/ImageIO.h"
#include "tessera/model/CaseFolder.h"
#include "tessera/model/Dataset.h"

using namespace tessera::model;
using tessera::Error;
using tessera::ErrorCode;
using nlohmann::json;
namespace fs = std::filesystem;
namespace image = tessera::image;

namespace {

class DatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) /
           ("tessera-dataset-" + std::string(info->name()) + "-" + std::to_string(std::random_device{}()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // A 6x5x4 image whose voxel values follow `seed`, and a label map holding the values `labels`.
  static TrainingCase makeCase(float seed, std::vector<float> labels = {0, 1}) {
    image::Geometry g;
    g.size = {6, 5, 4};
    g.spacing = {1.0, 1.0, 2.0};
    TrainingCase c{image::Volume(g), image::Volume(g)};
    for (size_t i = 0; i < c.image.voxels.size(); ++i) c.image.voxels[i] = seed + static_cast<float>(i % 7);
    for (size_t i = 0; i < c.labels.voxels.size(); ++i) c.labels.voxels[i] = labels[i % labels.size()];
    return c;
  }

  static void writeJson(const fs::path& path, const json& j) {
    fs::create_directories(path.parent_path());
    std::ofstream(path) << j.dump(2);
  }

  static void writePair(const fs::path& imagePath, const fs::path& labelPath, const TrainingCase& c) {
    fs::create_directories(imagePath.parent_path());
    fs::create_directories(labelPath.parent_path());
    image::writeImage(c.image, imagePath, image::PixelType::Float32);
    image::writeImage(c.labels, labelPath, image::PixelType::UInt8);
  }

  static json nnunetJson(int numTraining = 2, const std::string& ending = ".nii.gz") {
    return {{"channel_names", {{"0", "CT"}}},
            {"labels", {{"background", 0}, {"liver", 1}, {"tumour", 2}}},
            {"numTraining", numTraining},
            {"file_ending", ending}};
  }

  // nnU-Net v2: imagesTr/CASE_0000.nii.gz + labelsTr/CASE.nii.gz.
  fs::path makeNnUNet(const std::string& folder = "Dataset001_Liver") {
    const fs::path d = dir_ / folder;
    writeJson(d / "dataset.json", nnunetJson());
    writePair(d / "imagesTr" / "liver_002_0000.nii.gz", d / "labelsTr" / "liver_002.nii.gz", makeCase(20, {0, 1, 2}));
    writePair(d / "imagesTr" / "liver_001_0000.nii.gz", d / "labelsTr" / "liver_001.nii.gz", makeCase(10, {0, 1}));
    return d;
  }

  static json decathlonJson() {
    return {{"name", "Hippocampus"},
            {"modality", {{"0", "MRI"}}},
            {"labels", {{"0", "background"}, {"1", "Anterior"}, {"2", "Posterior"}}},
            {"numTraining", 2},
            {"numTest", 0},
            {"training",
             {{{"image", "./imagesTr/hippocampus_367.nii.gz"}, {"label", "./labelsTr/hippocampus_367.nii.gz"}},
              {{"image", "./imagesTr/hippocampus_001.nii.gz"}, {"label", "./labelsTr/hippocampus_001.nii.gz"}}}},
            {"test", json::array()}};
  }

  // Decathlon: dataset.json lists the pairs; imagesTr/ also holds a macOS "._" file, as the
  // downloaded archives do.
  fs::path makeDecathlon(const std::string& folder = "Task04_Hippocampus") {
    const fs::path d = dir_ / folder;
    writeJson(d / "dataset.json", decathlonJson());
    writePair(d / "imagesTr" / "hippocampus_367.nii.gz", d / "labelsTr" / "hippocampus_367.nii.gz", makeCase(3, {0, 2}));
    writePair(d / "imagesTr" / "hippocampus_001.nii.gz", d / "labelsTr" / "hippocampus_001.nii.gz", makeCase(1, {0, 1, 2}));
    std::ofstream(d / "imagesTr" / "._hippocampus_001.nii.gz") << "resource fork";
    return d;
  }

  fs::path makeTessera(const std::string& folder = "site-cases") {
    const fs::path d = dir_ / folder;
    writeCase(d, "b", makeCase(2));
    writeCase(d, "a", makeCase(1));
    return d;
  }

  fs::path dir_;
};

// The message of the Error(BadDataset) `f` throws; fails the test for any other outcome.
std::string badDataset(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::BadDataset) << e.what();
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a tessera::Error: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

bool oneLine(const std::string& s) { return !s.empty() && s.find('\n') == std::string::npos; }

std::vector<std::string> namesOf(const std::vector<NamedCase>& cases) {
  std::vector<std::string> names;
  for (const auto& c : cases) names.push_back(c.name);
  return names;
}

}  // namespace

TEST_F(DatasetTest, DetectsEachLayout) {
  EXPECT_EQ(detectDatasetLayout(makeTessera()), DatasetLayout::Tessera);
  EXPECT_EQ(detectDatasetLayout(makeNnUNet()), DatasetLayout::NnUNetV2);
  EXPECT_EQ(detectDatasetLayout(makeDecathlon()), DatasetLayout::Decathlon);
  EXPECT_EQ(layoutName(DatasetLayout::NnUNetV2), "nnU-Net v2");
}

TEST_F(DatasetTest, ReadsNnUNetV2WithoutChannelSuffix) {
  const Dataset d = readDataset(makeNnUNet());
  EXPECT_EQ(d.layout, DatasetLayout::NnUNetV2);
  EXPECT_EQ(namesOf(d.cases), (std::vector<std::string>{"liver_001", "liver_002"}));
  EXPECT_EQ(d.channels, 1);
  EXPECT_EQ(d.channelNames, (std::vector<std::string>{"CT"}));
  EXPECT_EQ(d.labelNames, (std::map<int, std::string>{{0, "background"}, {1, "liver"}, {2, "tumour"}}));
  EXPECT_EQ(d.cases[0].data.image.voxels, makeCase(10).image.voxels);
  EXPECT_EQ(d.cases[1].data.labels.voxels, makeCase(20, {0, 1, 2}).labels.voxels);
}

TEST_F(DatasetTest, NnUNetRespectsFileEnding) {
  const fs::path d = dir_ / "Dataset002_Mha";
  writeJson(d / "dataset.json", nnunetJson(1, ".mha"));
  writePair(d / "imagesTr" / "c1_0000.mha", d / "labelsTr" / "c1.mha", makeCase(1));
  // Files with another ending are not cases of this dataset.
  writePair(d / "imagesTr" / "c2_0000.nii.gz", d / "labelsTr" / "c2.nii.gz", makeCase(2));
  EXPECT_EQ(namesOf(readDataset(d).cases), std::vector<std::string>{"c1"});

  writeJson(d / "dataset.json", nnunetJson(1, ".png"));
  const std::string message = badDataset([&] { readDataset(d); });
  EXPECT_NE(message.find("'.png'"), std::string::npos) << message;
}

TEST_F(DatasetTest, NnUNetListedFiles) {
  // nnU-Net v2 may list each case's files under "dataset" instead of using imagesTr/.
  const fs::path d = dir_ / "Dataset003_Listed";
  json j = nnunetJson(1);
  j["dataset"] = {{"scan7", {{"images", {"scans/scan7_0000.nii.gz"}}, {"label", "masks/scan7.nii.gz"}}}};
  writeJson(d / "dataset.json", j);
  writePair(d / "scans" / "scan7_0000.nii.gz", d / "masks" / "scan7.nii.gz", makeCase(7));
  const Dataset ds = readDataset(d);
  EXPECT_EQ(ds.layout, DatasetLayout::NnUNetV2);
  EXPECT_EQ(namesOf(ds.cases), std::vector<std::string>{"scan7"});
}

TEST_F(DatasetTest, ReadsDecathlonFromTrainingList) {
  const Dataset d = readDataset(makeDecathlon());
  EXPECT_EQ(d.layout, DatasetLayout::Decathlon);
  EXPECT_EQ(namesOf(d.cases), (std::vector<std::string>{"hippocampus_001", "hippocampus_367"}));
  EXPECT_EQ(d.channelNames, std::vector<std::string>{"MRI"});
  EXPECT_EQ(d.labelNames, (std::map<int, std::string>{{0, "background"}, {1, "Anterior"}, {2, "Posterior"}}));
  EXPECT_EQ(d.cases[1].data.image.voxels, makeCase(3).image.voxels);
}

TEST_F(DatasetTest, DecathlonListWithChannelFilesAsNnUNetV1) {
  // nnU-Net v1 keeps the Decathlon dataset.json but names the files NAME_0000.nii.gz.
  const fs::path d = dir_ / "Task004_Hippocampus";
  writeJson(d / "dataset.json", decathlonJson());
  writePair(d / "imagesTr" / "hippocampus_367_0000.nii.gz", d / "labelsTr" / "hippocampus_367.nii.gz", makeCase(3));
  writePair(d / "imagesTr" / "hippocampus_001_0000.nii.gz", d / "labelsTr" / "hippocampus_001.nii.gz", makeCase(1));
  EXPECT_EQ(namesOf(readDataset(d).cases), (std::vector<std::string>{"hippocampus_001", "hippocampus_367"}));
}

TEST_F(DatasetTest, LabelNamesLandInTaskInfo) {
  TaskInfo task;
  applyLabelNames(task, readDataset(makeDecathlon()));
  EXPECT_EQ(task.labels, (std::map<int, std::string>{{0, "background"}, {1, "Anterior"}, {2, "Posterior"}}));

  applyLabelNames(task, readDataset(makeNnUNet()));
  EXPECT_EQ(task.labels, (std::map<int, std::string>{{0, "background"}, {1, "liver"}, {2, "tumour"}}));

  // The Tessera layout names no labels: the task keeps its own.
  applyLabelNames(task, readDataset(makeTessera()));
  EXPECT_EQ(task.labels.at(2), "tumour");
}

TEST_F(DatasetTest, LabelValueNotInDatasetJsonNamesFileAndValue) {
  const fs::path d = makeNnUNet();
  writePair(d / "imagesTr" / "liver_003_0000.nii.gz", d / "labelsTr" / "liver_003.nii.gz", makeCase(3, {0, 5}));
  const std::string message = badDataset([&] { readDataset(d); });
  EXPECT_TRUE(oneLine(message)) << message;
  EXPECT_NE(message.find((d / "labelsTr" / "liver_003.nii.gz").string()), std::string::npos) << message;
  EXPECT_NE(message.find("label value 5"), std::string::npos) << message;

  const fs::path t = makeDecathlon();
  writePair(t / "imagesTr" / "hippocampus_367.nii.gz", t / "labelsTr" / "hippocampus_367.nii.gz", makeCase(3, {0, 3}));
  const std::string decathlon = badDataset([&] { readDataset(t); });
  EXPECT_NE(decathlon.find("hippocampus_367.nii.gz: label value 3"), std::string::npos) << decathlon;
}

TEST_F(DatasetTest, NonIntegerLabelValueRefused) {
  const fs::path d = makeNnUNet();
  TrainingCase c = makeCase(3);
  c.labels.voxels[4] = 0.5f;
  fs::create_directories(d / "imagesTr");
  image::writeImage(c.image, d / "imagesTr" / "liver_003_0000.nii.gz", image::PixelType::Float32);
  image::writeImage(c.labels, d / "labelsTr" / "liver_003.nii.gz", image::PixelType::Float32);
  const std::string message = badDataset([&] { readDataset(d); });
  EXPECT_NE(message.find("liver_003.nii.gz: label value 0.5 is not an integer"), std::string::npos) << message;
}

TEST_F(DatasetTest, MissingLabelNamesTheCase) {
  const fs::path d = makeNnUNet();
  fs::remove(d / "labelsTr" / "liver_002.nii.gz");
  const std::string message = badDataset([&] { readDataset(d); });
  EXPECT_TRUE(oneLine(message)) << message;
  EXPECT_NE(message.find("case 'liver_002'"), std::string::npos) << message;

  const fs::path t = makeDecathlon();
  fs::remove(t / "labelsTr" / "hippocampus_367.nii.gz");
  const std::string decathlon = badDataset([&] { readDataset(t); });
  EXPECT_NE(decathlon.find("case 'hippocampus_367'"), std::string::npos) << decathlon;

  const fs::path u = makeDecathlon("Task04_NoImage");
  fs::remove(u / "imagesTr" / "hippocampus_001.nii.gz");
  const std::string image = badDataset([&] { readDataset(u); });
  EXPECT_NE(image.find("case 'hippocampus_001': image"), std::string::npos) << image;
}

TEST_F(DatasetTest, MissingDatasetJsonOrImagesTrIsNamed) {
  const fs::path d = makeNnUNet();
  fs::remove(d / "dataset.json");
  const std::string noJson = badDataset([&] { detectDatasetLayout(d); });
  EXPECT_TRUE(oneLine(noJson)) << noJson;
  EXPECT_NE(noJson.find("no dataset.json"), std::string::npos) << noJson;

  const fs::path t = makeDecathlon();
  fs::remove_all(t / "imagesTr");
  const std::string noImages = badDataset([&] { readDataset(t); });
  EXPECT_TRUE(oneLine(noImages)) << noImages;
  EXPECT_NE(noImages.find("no imagesTr/ folder"), std::string::npos) << noImages;

  const fs::path n = makeNnUNet("Dataset009_NoLabels");
  fs::remove_all(n / "labelsTr");
  const std::string noLabels = badDataset([&] { detectDatasetLayout(n); });
  EXPECT_NE(noLabels.find("no labelsTr/ folder"), std::string::npos) << noLabels;

  writeJson(dir_ / "odd" / "dataset.json", {{"description", "something else"}});
  fs::create_directories(dir_ / "odd" / "imagesTr");
  const std::string odd = badDataset([&] { detectDatasetLayout(dir_ / "odd"); });
  EXPECT_NE(odd.find("neither"), std::string::npos) << odd;

  std::ofstream(d / "dataset.json") << "{ not json";
  const std::string broken = badDataset([&] { readDataset(d); });
  EXPECT_TRUE(oneLine(broken)) << broken;
  EXPECT_NE(broken.find("dataset.json: not valid JSON"), std::string::npos) << broken;
}

TEST_F(DatasetTest, FolderOfNoKnownLayout) {
  fs::create_directories(dir_ / "empty" / "scans");
  const std::string message = badDataset([&] { detectDatasetLayout(dir_ / "empty"); });
  EXPECT_EQ(message, (dir_ / "empty").string() +
                         ": not a dataset: expected images/ + labels/ (Tessera), dataset.json + imagesTr/ + "
                         "labelsTr/ (nnU-Net v2 or Decathlon)");
  EXPECT_EQ(badDataset([&] { readCaseFolder(dir_ / "empty"); }), message);

  const std::string missing = badDataset([&] { readDataset(dir_ / "absent"); });
  EXPECT_NE(missing.find("absent: no such folder"), std::string::npos) << missing;
}

TEST_F(DatasetTest, RegionBasedLabelsRefused) {
  const fs::path d = makeNnUNet();
  json j = nnunetJson();
  j["labels"] = {{"background", 0}, {"whole tumor", {1, 2, 3}}, {"enhancing tumor", 3}};
  j["regions_class_order"] = {1, 3};
  writeJson(d / "dataset.json", j);
  const std::string message = badDataset([&] { readDataset(d); });
  EXPECT_TRUE(oneLine(message)) << message;
  EXPECT_NE(message.find("label 'whole tumor' is the region [1,2,3]"), std::string::npos) << message;
  EXPECT_NE(message.find("region-based"), std::string::npos) << message;
}

TEST_F(DatasetTest, IgnoreLabelRefused) {
  const fs::path d = makeNnUNet();
  json j = nnunetJson();
  j["labels"]["ignore"] = 3;
  writeJson(d / "dataset.json", j);
  const std::string message = badDataset([&] { readDataset(d); });
  EXPECT_NE(message.find("label 'ignore' (value 3)"), std::string::npos) << message;
}

TEST_F(DatasetTest, MultiChannelRefusedWithCount) {
  const fs::path d = makeNnUNet();
  json j = nnunetJson();
  j["channel_names"] = {{"0", "T1"}, {"1", "T2"}};
  writeJson(d / "dataset.json", j);
  writePair(d / "imagesTr" / "liver_001_0001.nii.gz", d / "labelsTr" / "liver_001.nii.gz", makeCase(10));
  const std::string message = badDataset([&] { readDataset(d); });
  EXPECT_TRUE(oneLine(message)) << message;
  EXPECT_NE(message.find("multi-channel datasets (2 channels: T1, T2) are not supported yet"), std::string::npos)
      << message;

  const fs::path t = makeDecathlon("Task01_BrainTumour");
  json dj = decathlonJson();
  dj["modality"] = {{"0", "FLAIR"}, {"1", "T1w"}, {"2", "t1gd"}, {"3", "T2w"}};
  writeJson(t / "dataset.json", dj);
  const std::string decathlon = badDataset([&] { readDataset(t); });
  EXPECT_NE(decathlon.find("(4 channels: FLAIR, T1w, t1gd, T2w)"), std::string::npos) << decathlon;
}

TEST_F(DatasetTest, StrayChannelFileRefused) {
  const fs::path d = makeNnUNet();
  writePair(d / "imagesTr" / "liver_001_0001.nii.gz", d / "labelsTr" / "liver_001.nii.gz", makeCase(10));
  const std::string message = badDataset([&] { readDataset(d); });
  EXPECT_NE(message.find("liver_001_0001.nii.gz: channel 1 but dataset.json declares 1 channel(s)"), std::string::npos)
      << message;
}

TEST_F(DatasetTest, NumTrainingOnlyMattersWhenNothingIsFound) {
  const fs::path d = makeNnUNet();
  writeJson(d / "dataset.json", nnunetJson(5));  // more declared than present: fine
  EXPECT_EQ(readDataset(d).cases.size(), 2u);

  const fs::path e = dir_ / "Dataset004_Empty";
  writeJson(e / "dataset.json", nnunetJson(3));
  fs::create_directories(e / "imagesTr");
  fs::create_directories(e / "labelsTr");
  const std::string message = badDataset([&] { readDataset(e); });
  EXPECT_NE(message.find("numTraining is 3"), std::string::npos) << message;

  writeJson(e / "dataset.json", nnunetJson(0));
  EXPECT_TRUE(readDataset(e).cases.empty());
}

TEST_F(DatasetTest, TesseraLayoutUnchanged) {
  const fs::path d = makeTessera();
  const Dataset ds = readDataset(d);
  EXPECT_EQ(ds.layout, DatasetLayout::Tessera);
  EXPECT_EQ(namesOf(ds.cases), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(ds.labelNames.empty());
  EXPECT_EQ(ds.channels, 1);
  EXPECT_EQ(ds.cases[1].data.image.voxels, makeCase(2).image.voxels);

  fs::remove(d / "labels" / "b.nii.gz");
  const std::string message = badDataset([&] { readCaseFolder(d); });
  EXPECT_EQ(message, (d / "images" / "b.nii.gz").string() + ": has no label map " + (d / "labels" / "b.nii.gz").string());
}

TEST_F(DatasetTest, ReadCaseFolderAcceptsEveryLayout) {
  EXPECT_EQ(namesOf(readCaseFolder(makeTessera())), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(namesOf(readCaseFolder(makeNnUNet())), (std::vector<std::string>{"liver_001", "liver_002"}));
  EXPECT_EQ(namesOf(readCaseFolder(makeDecathlon())), (std::vector<std::string>{"hippocampus_001", "hippocampus_367"}));
}
