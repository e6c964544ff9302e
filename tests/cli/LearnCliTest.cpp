// `tessera learn` run the way a site runs it: after each accepted case, then again with nothing new.
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "CliScratch.h"
#include "TrainedModelCache.h"
#include "tessera/image/ImageIO.h"

namespace fs = std::filesystem;
using tessera::image::Geometry;
using tessera::image::Volume;

namespace {

class LearnCli : public tessera::test::CliScratchTest {
 protected:
  LearnCli() : CliScratchTest("tessera-learn-cli-") {}

  tessera::test::SplitOutput run(const std::string& args) { return runSplit(args); }

  // A bright sphere of the given radius in a dark box, written as case NAME of folder DIR.
  void writeCase(const std::string& folder, const std::string& name, double radius, float label = 1.0f) {
    Geometry g;
    g.size = {32, 32, 8};
    g.spacing = {1.0, 1.0, 2.0};
    Volume img(g), lab(g);
    for (int64_t z = 0; z < 8; ++z)
      for (int64_t y = 0; y < 32; ++y)
        for (int64_t x = 0; x < 32; ++x) {
          const double dx = x - 16, dy = y - 16, dz = (z - 4) * 2.0;
          const bool inside = dx * dx + dy * dy + dz * dz <= radius * radius;
          img.at(x, y, z) = inside ? 100.0f + static_cast<float>((x * 7 + y * 3) % 11) : 20.0f + static_cast<float>((x + y) % 5);
          lab.at(x, y, z) = inside ? label : 0.0f;
        }
    fs::create_directories(dir_ / folder / "images");
    fs::create_directories(dir_ / folder / "labels");
    tessera::image::writeImage(img, dir_ / folder / "images" / (name + ".nii.gz"));
    tessera::image::writeImage(lab, dir_ / folder / "labels" / (name + ".nii.gz"), tessera::image::PixelType::UInt8);
  }

  // A small model trained on two spheres by `tessera train`: the site's generation 0 (trained
  // once for this binary and this `tessera`, see TrainedModelCache.h).
  void trainSiteModel() {
    const auto model = tessera::test::cachedTrainedModel(
        "learn-cli-site-model",
        [&] {
          writeCase("initial", "s1", 7);
          writeCase("initial", "s2", 10);
          std::ofstream(path("spec.json")) << R"({"network": {"dims": 2, "axis": 2, "base_features": 8, "depth": 3}, )"
                                           << R"("preprocessing": {"target_spacing": [0, 0, 0]}})";
          const auto r = run("train --dataset " + path("initial") + " --spec " + path("spec.json") + " --out " +
                             path("m.tsm") + " --epochs 4 --batch-size 4 --threads 1 --task sphere");
          if (r.code != 0) throw std::runtime_error("tessera train failed: " + r.err);
          return tessera::model::loadModel(path("m.tsm"));
        },
        {TESSERA_BINARY});
    tessera::model::saveModel(model, path("m.tsm"));
  }
};

TEST_F(LearnCli, LearnsEachAcceptedCaseOnceAndAdvancesTheSiteGeneration) {
  trainSiteModel();
  writeCase("cases", "a1", 8);
  auto r = run("learn --model " + path("m.tsm") + " --cases " + path("cases") + " --out " + path("m1.tsm") +
               " --epochs 2 --threads 1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("epoch 2/2"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("learned 1 case(s) (a1), replayed 0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("a1: Dice "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("site generation 1, parent 0"), std::string::npos) << r.out;
  ASSERT_TRUE(fs::exists(path("m1.tsm")));
  const auto record = nlohmann::json::parse(slurp(dir_ / "cases" / "learned.json"));
  ASSERT_EQ(record["cases"].size(), 1u);
  EXPECT_EQ(record["cases"][0]["name"], "a1");
  EXPECT_EQ(record["cases"][0]["generation"], 1);

  // Run again: nothing new, nothing written.
  r = run("learn --model " + path("m1.tsm") + " --cases " + path("cases") + " --out " + path("m2.tsm") + " --threads 1");
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("nothing new to learn"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(fs::exists(path("m2.tsm")));

  // The next accepted case is learned with the first one replayed.
  writeCase("cases", "a2", 9);
  r = run("learn --model " + path("m1.tsm") + " --cases " + path("cases") + " --out " + path("m2.tsm") +
          " --epochs 1 --threads 1 --replay 4 --replay-sampling recent --label-smoothing 0");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("learned 1 case(s) (a2), replayed 1 (a1)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("site generation 2, parent 1"), std::string::npos) << r.out;
}

// The site flow on the command line: a person corrects a prediction (two drawn slices, the rest
// propagated), accepts it into the case folder, and the site model learns it with its proxy
// weights and interaction figures.
TEST_F(LearnCli, LearnsWhatInteractAccepted) {
  trainSiteModel();
  writeCase("scan", "x", 9);
  const std::string session = " --session " + path("session");
  auto r = run("interact start --model " + path("m.tsm") + " --in " + path("scan/images/x.nii.gz") + session);
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* slice : {"2", "5"}) {
    r = run("interact scribble" + session + " --slice " + slice + " --axis 2 --mask " + path("scan/labels/x.nii.gz"));
    ASSERT_EQ(r.code, 0) << r.err;
  }
  r = run("interact propagate" + session);
  ASSERT_EQ(r.code, 0) << r.err;
  r = run("interact accept" + session + " --cases " + path("cases") + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string name = nlohmann::json::parse(r.out).at("case");
  EXPECT_TRUE(fs::exists(dir_ / "cases" / "weights" / (name + ".nii.gz")));
  EXPECT_TRUE(fs::exists(dir_ / "cases" / "interactions" / (name + ".json")));

  r = run("learn --model " + path("m.tsm") + " --cases " + path("cases") + " --out " + path("m1.tsm") +
          " --epochs 2 --threads 1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("learned 1 case(s) (" + name + ")"), std::string::npos) << r.out;
  const auto record = nlohmann::json::parse(slurp(dir_ / "cases" / "learned.json"));
  ASSERT_EQ(record["cases"].size(), 1u);
  EXPECT_EQ(record["cases"][0]["name"], name);
}

TEST_F(LearnCli, BadInputIsOneLineAndWritesNothing) {
  trainSiteModel();
  auto r = run("learn --model " + path("m.tsm") + " --cases " + path("nowhere") + " --out " + path("m1.tsm"));
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("nowhere"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;

  // A case with a class the model does not have (label 2 of a 2-class model).
  writeCase("cases", "three", 8, 2.0f);
  r = run("learn --model " + path("m.tsm") + " --cases " + path("cases") + " --out " + path("m1.tsm"));
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("labels/three"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "cases" / "learned.json"));

  fs::remove_all(dir_ / "cases");
  writeCase("cases", "a1", 8);
  r = run("learn --model " + path("m.tsm") + " --cases " + path("cases") + " --out " + path("m1.tsm") + " --replay-sampling newest");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("newest"), std::string::npos) << r.err;
  r = run("learn --model " + path("missing.tsm") + " --cases " + path("cases") + " --out " + path("m1.tsm"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("missing.tsm"), std::string::npos) << r.err;
  r = run("learn --model " + path("m.tsm") + " --cases " + path("cases") + " --out " + path("m1.tsm") + " --new a7");
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("a7"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(path("m1.tsm")));
  EXPECT_FALSE(fs::exists(dir_ / "cases" / "learned.json"));
}

}  // namespace
