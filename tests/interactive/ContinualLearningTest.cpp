#include "tessera/interactive/ContinualLearning.h"

#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "Phantom.h"
#include "tessera/common/Error.h"
#include "tessera/image/ImageIO.h"
#include "tessera/model/TaskInfo.h"
#include "tessera/nn/Inference.h"
#include "tessera/nn/Runtime.h"

namespace tessera::interactive {
namespace {

namespace fs = std::filesystem;
using test::makePhantom;

class ContinualLearning : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("tessera-continual-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static model::Model tinyModel() {
    model::TaskInfo task;
    task.name = "phantom";
    task.labels = {{0, "background"}, {1, "blob"}};
    return model::initialModel(test::tinySpec(2), {}, task, 11);
  }

  fs::path dir_;
};

// What a phantom looks like through a second scanner: inverted contrast (a dark structure on a
// bright background, as T2 against T1), with the same labels. A network fine-tuned on these alone
// unlearns the first scanner's bright structures.
model::TrainingCase secondScanner(uint64_t seed) {
  model::TrainingCase c = makePhantom(seed);
  for (float& v : c.image.voxels) v = 200.0f - v;
  return c;
}

double meanDiceOn(const model::Model& m, const std::vector<model::NamedCase>& cases) {
  double sum = 0;
  for (const auto& c : cases) sum += model::foregroundDice(nn::segment(m, c.data.image), c.data.labels, m.task);
  return sum / static_cast<double>(cases.size());
}

TEST_F(ContinualLearning, LearnRecordKeepsLearnedCasesFromCountingAsNewAgain) {
  const model::Model m = tinyModel();
  for (uint64_t s : {3, 1, 2}) model::writeCase(dir_, "c" + std::to_string(s), makePhantom(s));
  CaseSelection first = selectCases(dir_, m);
  ASSERT_EQ(first.fresh.size(), 3u);
  EXPECT_TRUE(first.earlier.empty());
  EXPECT_EQ(first.recorded, 0u);

  // Learned in the order c3, c1: the replay buffer keeps that order, after the unrecorded c2.
  recordLearned(dir_, {"c3"}, m);
  recordLearned(dir_, {"c1"}, m);
  CaseSelection second = selectCases(dir_, m);
  ASSERT_EQ(second.fresh.size(), 1u);
  EXPECT_EQ(second.fresh[0].name, "c2");
  recordLearned(dir_, {"c2"}, m);
  CaseSelection third = selectCases(dir_, m);
  EXPECT_TRUE(third.fresh.empty());
  EXPECT_EQ(third.recorded, 3u);
  ASSERT_EQ(third.earlier.size(), 3u);
  EXPECT_EQ(third.earlier[0], "c3");
  EXPECT_EQ(third.earlier[1], "c1");
  EXPECT_EQ(third.earlier[2], "c2");

  const auto record = readLearnedRecord(dir_);
  ASSERT_EQ(record.size(), 3u);
  EXPECT_EQ(record[0].modelSha256, m.weightsSha256());

  // Named explicitly, a learned case is new again; an unknown name is refused.
  CaseSelection named = selectCases(dir_, m, {"c1"});
  ASSERT_EQ(named.fresh.size(), 1u);
  EXPECT_EQ(named.fresh[0].name, "c1");
  EXPECT_EQ(named.earlier.size(), 2u);
  try {
    selectCases(dir_, m, {"c9"});
    FAIL() << "accepted an unknown --new name";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::NotFound);
    EXPECT_NE(std::string(e.what()).find("c9"), std::string::npos);
  }
}

TEST_F(ContinualLearning, ConcurrentRecordersKeepEachOthersCases) {
  const model::Model m = tinyModel();
  const auto recordMany = [&](const std::string& prefix) {
    for (int i = 0; i < 15; ++i) recordLearned(dir_, {prefix + std::to_string(i)}, m);
  };
  std::thread a(recordMany, "a"), b(recordMany, "b");
  a.join();
  b.join();
  EXPECT_EQ(readLearnedRecord(dir_).size(), 30u);
}

TEST_F(ContinualLearning, DamagedRecordAndBadFoldersAreOneLineErrors) {
  const model::Model m = tinyModel();
  try {
    selectCases(dir_ / "missing", m);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::NotFound);
  }
  model::writeCase(dir_, "c1", makePhantom(1));
  { std::ofstream(learnedRecordPath(dir_)) << "{\"format\": \"tessera-learned\", \"cases\": [{\"nam"; }
  try {
    selectCases(dir_, m);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Corrupt);
    EXPECT_NE(std::string(e.what()).find("learned.json"), std::string::npos);
  }
  fs::remove(learnedRecordPath(dir_));
  // Labels with a class the model does not have: named by file.
  model::TrainingCase three = makePhantom(2);
  three.labels.at(1, 1, 1) = 2.0f;
  model::writeCase(dir_, "c2", three);
  try {
    selectCases(dir_, m);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::BadModel);
    EXPECT_NE(std::string(e.what()).find("labels/c2"), std::string::npos) << e.what();
  }
}

TEST_F(ContinualLearning, OptionsLabelSmoothingAndProxyWeightsReachTraining) {
  model::Model m = tinyModel();
  for (uint64_t s = 1; s <= 5; ++s) model::writeCase(dir_, "c" + std::to_string(s), makePhantom(s));
  recordLearned(dir_, {"c1", "c2", "c3", "c4"}, m);
  // c5 is a proxy mask: trusted on its drawn slice 8, less further away.
  const model::TrainingCase c5 = makePhantom(5);
  image::Volume w(c5.image.geometry);
  for (int64_t z = 0; z < 16; ++z)
    for (int64_t y = 0; y < 48; ++y)
      for (int64_t x = 0; x < 48; ++x) w.at(x, y, z) = static_cast<float>(1.0 / (1.0 + std::abs(z - 8)));
  fs::create_directories(dir_ / "weights");
  image::writeImage(w, proxyWeightsPath(dir_, "c5"), image::PixelType::Float32);

  CaseSelection s = selectCases(dir_, m);
  ASSERT_EQ(s.fresh.size(), 1u);
  ContinualOptions options;
  options.replay = 2;
  options.sampling = ReplaySampling::Recent;
  nn::TrainOptions seen;
  std::vector<model::TrainingCase> seenCases;
  options.train = [&](model::Model&, const std::vector<model::TrainingCase>& cases, const nn::TrainOptions& o) {
    seen = o;
    seenCases = cases;
  };
  const int64_t generation = m.generation;
  const ContinualResult r = learnFromCaseFolder(m, s, options);
  EXPECT_DOUBLE_EQ(seen.labelSmoothing, 0.1);
  EXPECT_DOUBLE_EQ(seen.learningRate, options.learningRate);
  EXPECT_EQ(seen.epochs, options.epochs);
  EXPECT_LT(options.learningRate, nn::TrainOptions{}.learningRate);  // gentler than training from scratch
  EXPECT_LT(options.epochs, nn::TrainOptions{}.epochs);
  ASSERT_EQ(seenCases.size(), 3u);
  ASSERT_EQ(seenCases[0].weights.voxels.size(), w.voxels.size());
  EXPECT_FLOAT_EQ(seenCases[0].weights.at(3, 3, 8), 1.0f);
  EXPECT_FLOAT_EQ(seenCases[0].weights.at(3, 3, 0), 1.0f / 9.0f);
  EXPECT_TRUE(seenCases[1].weights.voxels.empty());  // replayed, no proxy: weight 1
  EXPECT_EQ(r.learned, std::vector<std::string>{"c5"});
  EXPECT_EQ(r.replayed, (std::vector<std::string>{"c3", "c4"}));
  EXPECT_EQ(r.samples, 3 * 16);  // slices along axis 2 of the three cases trained on
  EXPECT_EQ(m.generation, generation + 1);
  EXPECT_EQ(m.parentGeneration, generation);

  options.labelSmoothing = 0.0;
  options.advanceGeneration = false;
  learnFromCaseFolder(m, s, options);
  EXPECT_DOUBLE_EQ(seen.labelSmoothing, 0.0);
  EXPECT_EQ(m.generation, generation + 1);

  // Weights off the image's grid are refused, naming the file.
  image::Geometry other = w.geometry;
  other.size = {48, 48, 8};
  image::writeImage(image::Volume(other, 1.0f), proxyWeightsPath(dir_, "c5"), image::PixelType::Float32);
  try {
    selectCases(dir_, m);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::BadImage);
    EXPECT_NE(std::string(e.what()).find("weights/c5"), std::string::npos) << e.what();
  }
}

TEST_F(ContinualLearning, InteractionFiguresAreReadFromTheSidecar) {
  EXPECT_FALSE(readInteractionFigures(dir_, "c1"));
  fs::create_directories(dir_ / "interactions");
  { std::ofstream(interactionsPath(dir_, "c1")) << R"({"clicks": [[1,2,3],[4,5,6]], "seconds": 42.5, "dice_initial_to_accepted": 0.81})"; }
  const auto f = readInteractionFigures(dir_, "c1");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->clicks, 2);
  EXPECT_DOUBLE_EQ(*f->seconds, 42.5);
  EXPECT_DOUBLE_EQ(*f->diceBefore, 0.81);
  { std::ofstream(interactionsPath(dir_, "c2")) << "[1]"; }
  EXPECT_THROW(readInteractionFigures(dir_, "c2"), Error);
}

// The forgetting measurement on a phantom sequence: a model trained on the first scanner's cases
// learns, one case at a time, two cases of a second scanner. With replay its Dice on the first
// cases stays within a Dice point; without replay it drops clearly more.
TEST_F(ContinualLearning, ReplayKeepsTheFirstCasesWhileLearningASecondScanner) {
  const int threads = nn::threadCount();
  nn::setThreadCount(1);  // bit-identical reruns: the margins below are not a matter of luck
  std::vector<model::NamedCase> first;
  for (uint64_t s = 1; s <= 4; ++s) first.push_back({"a" + std::to_string(s), makePhantom(s)});
  model::Model base = tinyModel();
  {
    std::vector<model::TrainingCase> cases;
    for (const auto& c : first) cases.push_back(c.data);
    nn::TrainOptions scratch;
    scratch.epochs = 20;
    nn::trainModel(base, cases, scratch);
  }
  const double before = meanDiceOn(base, first);
  ASSERT_GE(before, 0.9) << "the starting model should know the first scanner";

  const auto learnSequence = [&](int replay) {
    model::Model m = base;
    std::vector<model::NamedCase> earlier = first;
    for (uint64_t s = 11; s <= 12; ++s) {
      model::NamedCase next{"b" + std::to_string(s), secondScanner(s)};
      ContinualOptions options;
      options.replay = replay;
      options.seed = s;
      const ContinualResult r = learnContinually(m, {next}, earlier, options);
      EXPECT_GT(r.dice[0].after, r.dice[0].before) << "replay " << replay << ", case " << next.name;
      earlier.push_back(std::move(next));
    }
    return m;
  };
  const model::Model withReplay = learnSequence(3);
  const model::Model withoutReplay = learnSequence(0);
  nn::setThreadCount(threads);

  const double keptWith = meanDiceOn(withReplay, first), keptWithout = meanDiceOn(withoutReplay, first);
  std::cout << "first cases' Dice " << before << " → with replay " << keptWith << ", without " << keptWithout << "\n";
  EXPECT_GE(keptWith, before - 0.01);
  EXPECT_LT(keptWithout, keptWith - 0.03);
  // And the second scanner was learned: a held-out case of it is segmented.
  const model::TrainingCase heldOut = secondScanner(20);
  EXPECT_GE(model::foregroundDice(nn::segment(withReplay, heldOut.image), heldOut.labels, withReplay.task), 0.8);
}

}  // namespace
}  // namespace tessera::interactive
