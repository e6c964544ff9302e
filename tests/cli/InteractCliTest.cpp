// `tessera interact` run the way a person's shell runs it: one process per step, the session in a
// directory; the happy path prints what changed, every refusal is one line, a non-zero exit
// status and an unchanged session directory.
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "CliScratch.h"
#include "tessera/common/Sha256.h"
#include "tessera/image/ImageIO.h"
#include "tessera/model/Model.h"

namespace fs = std::filesystem;
using tessera::image::Geometry;
using tessera::image::Volume;

namespace {

class InteractCli : public tessera::test::CliScratchTest {
 protected:
  InteractCli() : CliScratchTest("tessera-interact-cli-") {}

  void SetUp() override {
    CliScratchTest::SetUp();
    Geometry g;
    g.size = {32, 32, 12};
    g.spacing = {1.0, 1.0, 2.0};
    g.origin = {3, -4, 5};
    Volume image(g);
    for (int64_t z = 0; z < 12; ++z)
      for (int64_t y = 0; y < 32; ++y)
        for (int64_t x = 0; x < 32; ++x) {
          const bool inside = (x - 16) * (x - 16) + (y - 16) * (y - 16) + (z - 6) * (z - 6) * 4 <= 64;
          image.at(x, y, z) = (inside ? 100.0f : 20.0f) + static_cast<float>((x * 7 + y * 3 + z) % 11);
        }
    tessera::image::writeImage(image, dir_ / "image.nii.gz");
    geometry_ = g;
    writeModel("guided.tsm", 2);
    writeModel("auto.tsm", 0);
  }

  void writeModel(const std::string& name, int guidanceChannels) {
    tessera::model::NetworkSpec spec;
    spec.baseFeatures = 4;
    spec.depth = 2;
    spec.guidanceChannels = guidanceChannels;
    tessera::model::Preprocessing prep;
    prep.targetSpacing = {1.0, 1.0, 0.0};
    tessera::model::saveModel(tessera::model::initialModel(spec, prep, tessera::model::TaskInfo{}, 3), dir_ / name);
  }

  tessera::test::SplitOutput run(const std::string& args) { return runSplit("interact " + args + " --threads 1"); }

  std::map<std::string, std::string> fingerprint(const fs::path& directory) {
    std::map<std::string, std::string> files;
    for (const auto& entry : fs::recursive_directory_iterator(directory)) {
      files[fs::relative(entry.path(), directory).string()] =
          entry.is_regular_file() ? tessera::common::sha256OfFile(entry.path()) : std::string("(directory)");
    }
    return files;
  }

  // A refused step: non-zero exit, one line on stderr naming `fragment`, nothing on disk changed.
  void expectRefused(const std::string& args, const std::string& fragment, int code) {
    const auto before = fingerprint(session());
    const auto r = run(args);
    EXPECT_EQ(r.code, code) << args << "\n" << r.err;
    EXPECT_NE(r.err.find(fragment), std::string::npos) << args << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(fingerprint(session()), before) << args;
  }

  fs::path session() const { return dir_ / "session"; }
  std::string s() const { return "--session " + session().string(); }

  Geometry geometry_;
};

}  // namespace

TEST_F(InteractCli, StartClickSuggestUndo) {
  auto r = run("start --model " + (dir_ / "guided.tsm").string() + " --in " + (dir_ / "image.nii.gz").string() + " " + s());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("start: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("mask.nii.gz"), std::string::npos) << r.out;
  const auto initialMask = slurp(session() / "mask.nii.gz");
  ASSERT_FALSE(initialMask.empty());

  r = run("click " + s() + " --pos 16,16,6 --label 1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("click: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("voxels changed, Dice to previous"), std::string::npos) << r.out;
  // sigma across slices: 3 voxels of 1 mm in-plane = 1.5 slices of 2 mm; reach 4.5 slices.
  EXPECT_NE(r.out.find("slices 2..10 of axis 2"), std::string::npos) << r.out;

  // The same voxel given in mm (LPS): origin + index * spacing on this axis-aligned grid.
  r = run("click " + s() + " --pos 19,12,17 --mm --label 0 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto report = nlohmann::json::parse(r.out);
  EXPECT_EQ(report.at("step"), "click");
  EXPECT_EQ(report.at("revision"), 2);
  EXPECT_TRUE(report.contains("voxels_changed"));
  EXPECT_TRUE(report.at("dice_to_previous").is_number());
  const auto doc = nlohmann::json::parse(slurp(session() / "session.json"));
  ASSERT_EQ(doc.at("clicks").size(), 2u);
  EXPECT_EQ(doc.at("clicks")[1].at("voxel"), nlohmann::json({16, 16, 6}));
  EXPECT_EQ(doc.at("clicks")[1].at("label"), 0);

  r = run("suggest " + s() + " --json --top 3");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto suggestion = nlohmann::json::parse(r.out);
  EXPECT_EQ(suggestion.at("axis"), 2);
  EXPECT_GE(suggestion.at("slice").get<int>(), 0);
  EXPECT_LT(suggestion.at("slice").get<int>(), 12);
  EXPECT_GE(suggestion.at("score").get<double>(), 0.0);
  EXPECT_EQ(suggestion.at("ranked").size(), 3u);
  r = run("suggest " + s());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("across axis 2: score"), std::string::npos) << r.out;

  ASSERT_EQ(run("undo " + s()).code, 0);
  r = run("undo " + s());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("undo: "), std::string::npos);
  EXPECT_EQ(slurp(session() / "mask.nii.gz"), initialMask);
  expectRefused("undo " + s(), "nothing to undo", 2);
}

TEST_F(InteractCli, ScribbleAndAccept) {
  ASSERT_EQ(run("start --model " + (dir_ / "auto.tsm").string() + " --in " + (dir_ / "image.nii.gz").string() + " " + s()).code, 0);
  Geometry g = geometry_;
  g.size[2] = 1;
  Volume drawn(g, 0.0f);
  for (int64_t y = 10; y < 20; ++y)
    for (int64_t x = 10; x < 20; ++x) drawn.at(x, y, 0) = 1.0f;
  tessera::image::writeImage(drawn, dir_ / "slice.nii.gz", tessera::image::PixelType::UInt8);
  auto r = run("scribble " + s() + " --slice 6 --mask " + (dir_ / "slice.nii.gz").string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("scribble: "), std::string::npos) << r.out;
  r = run("accept " + s() + " --cases " + (dir_ / "cases").string() + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto accepted = nlohmann::json::parse(r.out);
  const std::string name = accepted.at("case");
  EXPECT_TRUE(fs::exists(dir_ / "cases" / "images" / (name + ".nii.gz")));
  EXPECT_TRUE(fs::exists(dir_ / "cases" / "labels" / (name + ".nii.gz")));
  const auto usage = nlohmann::json::parse(slurp(dir_ / "cases" / "interactions" / (name + ".json")));
  EXPECT_EQ(usage.at("scribbles"), 1);
  EXPECT_EQ(usage.at("clicks"), 0);
  const auto labels = tessera::image::readImage(dir_ / "cases" / "labels" / (name + ".nii.gz"));
  EXPECT_EQ(labels.at(15, 15, 6), 1.0f);
  EXPECT_EQ(labels.at(25, 25, 6), 0.0f);
}

TEST_F(InteractCli, RefusalsAreOneLineAndLeaveTheSessionAlone) {
  ASSERT_EQ(run("start --model " + (dir_ / "auto.tsm").string() + " --in " + (dir_ / "image.nii.gz").string() + " " + s()).code, 0);
  expectRefused("click " + s() + " --pos 16,16,6 --label 1", "no guidance channels", 2);
  expectRefused("click " + s() + " --pos 40,16,6 --label 1", "outside the image", 2);
  tessera::image::writeImage(Volume([] {
                               Geometry g;
                               g.size = {8, 8, 1};
                               return g;
                             }()),
                             dir_ / "small.nii.gz", tessera::image::PixelType::UInt8);
  expectRefused("scribble " + s() + " --slice 2 --mask " + (dir_ / "small.nii.gz").string(), "8x8x1", 2);

  auto r = run("suggest --session " + (dir_ / "nowhere").string());
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("no session here"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "nowhere"));

  const auto json = slurp(session() / "session.json");
  std::ofstream(session() / "session.json", std::ios::trunc) << json.substr(0, json.size() - 40);
  expectRefused("undo " + s(), "session.json", 1);
}
