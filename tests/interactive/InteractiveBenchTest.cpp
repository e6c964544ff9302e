// The interactive bench's protocol on phantoms with a tiny guidance model: every figure the JSON
// promises is there and agrees with the per-case numbers it is made of, and the effort follows
// the documented definition. (Whether the figures are good is the bench's business, not a test's.)
#include "tessera/interactive/InteractiveBench.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "Phantom.h"
#include "tessera/common/Error.h"
#include "tessera/model/Model.h"
#include "tessera/nn/Runtime.h"

namespace tessera::interactive {
namespace {

namespace fs = std::filesystem;
using image::Volume;
using nlohmann::json;

class InteractiveBench : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("tessera-ibench-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // An untrained 2D guidance network across axis 2 that keeps the slice spacing.
  fs::path writeModel(int guidanceChannels) {
    auto spec = test::tinySpec(2);
    spec.guidanceChannels = guidanceChannels;
    model::Preprocessing prep;
    prep.targetSpacing = {1.0, 1.0, 0.0};
    model::TaskInfo task;
    task.name = "phantom";
    const auto path = dir_ / ("model-g" + std::to_string(guidanceChannels) + ".tsm");
    model::saveModel(model::initialModel(spec, prep, task, 3), path);
    return path;
  }

  static std::vector<BenchCase> phantoms(std::initializer_list<uint64_t> seeds) {
    std::vector<BenchCase> cases;
    for (uint64_t seed : seeds) {
      auto c = test::makePhantom(seed, {32, 32, 12});  // small: the protocol runs ~10 sessions and 6 trainings
      cases.push_back({"phantom" + std::to_string(seed), std::move(c.image), std::move(c.labels)});
    }
    return cases;
  }

  InteractiveBenchOptions quickOptions() const {
    InteractiveBenchOptions o;
    o.clicks.maxClicks = 3;
    o.learning.epochs = 1;
    o.learning.replay = 2;
    o.proxyEvery = {3, 6};
    o.propagation.iterations = {4, 2};
    o.workDir = dir_ / "work";
    return o;
  }

  fs::path dir_;
};

Volume box(std::array<int64_t, 3> size, std::array<int64_t, 3> lo, std::array<int64_t, 3> hi) {
  image::Geometry g;
  g.size = size;
  Volume v(g);
  for (int64_t z = lo[2]; z <= hi[2]; ++z)
    for (int64_t y = lo[1]; y <= hi[1]; ++y)
      for (int64_t x = lo[0]; x <= hi[0]; ++x) v.at(x, y, z) = 1.0f;
  return v;
}

TEST(InteractiveBenchEffort, ManualEffortIsOneInteractionPerStructureSlice) {
  // A 3x4x5 box: 5 slices across z hold it, 3 across x, 4 across y; 60 voxels in every case.
  const Volume truth = box({10, 10, 10}, {2, 3, 4}, {4, 6, 8});
  EXPECT_EQ(manualEffort(truth, 2, 1).interactions, 5);
  EXPECT_EQ(manualEffort(truth, 0, 1).interactions, 3);
  EXPECT_EQ(manualEffort(truth, 1, 1).interactions, 4);
  EXPECT_EQ(manualEffort(truth, 2, 1).editedVoxels, 60);
  EXPECT_EQ(manualEffort(truth, 2, 2).interactions, 0);  // another label: nothing to draw
  EXPECT_THROW(manualEffort(truth, 3, 1), Error);
}

TEST(InteractiveBenchEffort, EveryNthSliceBracketsTheStructure) {
  const Volume truth = box({8, 8, 20}, {1, 1, 3}, {5, 5, 14});
  EXPECT_EQ(everyNthStructureSlice(truth, 2, 1, 5), (std::vector<int64_t>{3, 8, 13, 14}));
  EXPECT_EQ(everyNthStructureSlice(truth, 2, 1, 20), (std::vector<int64_t>{3, 14}));
  EXPECT_EQ(everyNthStructureSlice(truth, 2, 1, 11), (std::vector<int64_t>{3, 14}));
  EXPECT_EQ(everyNthStructureSlice(truth, 2, 1, 1).size(), 12u);
  EXPECT_TRUE(everyNthStructureSlice(truth, 2, 2, 5).empty());
  EXPECT_THROW(everyNthStructureSlice(truth, 2, 1, 0), Error);
}

TEST_F(InteractiveBench, BadInputIsRefusedBeforeAnyWork) {
  const auto model = writeModel(2);
  auto expectBadRequest = [&](const std::vector<BenchCase>& cases, const InteractiveBenchOptions& o, const std::string& part) {
    try {
      runInteractiveBench(model, cases, o);
      ADD_FAILURE() << "no error for " << part;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::BadRequest) << e.what();
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  auto o = quickOptions();
  expectBadRequest(phantoms({1}), o, "at least 2");
  o.learnCases = 2;
  expectBadRequest(phantoms({1, 2}), o, "--learn-cases 2");
  o = quickOptions();
  o.clicks.maxClicks = 0;
  expectBadRequest(phantoms({1, 2}), o, "--max-clicks");
  o = quickOptions();
  auto cases = phantoms({1, 2});
  cases[1].name = cases[0].name;
  expectBadRequest(cases, o, "given twice");
  cases = phantoms({1, 2});
  for (float& v : cases[1].truth.voxels) v = 0.0f;
  expectBadRequest(cases, o, "no voxel of label 1");
  cases = phantoms({1, 2});
  cases[0].truth.geometry.size[2] = 1;
  expectBadRequest(cases, o, "not on one grid");
  EXPECT_FALSE(fs::exists(o.workDir));
}

TEST_F(InteractiveBench, ModelWithoutGuidanceIsRefused) {
  try {
    runInteractiveBench(writeModel(0), phantoms({1, 2}), quickOptions());
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::BadRequest);
    EXPECT_NE(std::string(e.what()).find("guidance"), std::string::npos) << e.what();
  }
}

void expectConsistentCase(const json& c, const InteractiveBenchOptions& o) {
  SCOPED_TRACE(c.dump());
  const int maxClicks = o.clicks.maxClicks;
  const int clicks = c.at("clicks").get<int>();
  const auto dice = c.at("dice_per_click").get<std::vector<double>>();
  EXPECT_GE(clicks, 0);
  EXPECT_LE(clicks, maxClicks);
  EXPECT_EQ(dice.size(), static_cast<size_t>(clicks) + 1);
  EXPECT_EQ(c.at("seconds_per_click").size(), static_cast<size_t>(clicks));
  EXPECT_EQ(c.at("compute_seconds_per_click").size(), static_cast<size_t>(clicks));
  for (double d : dice) {
    EXPECT_GE(d, 0.0);
    EXPECT_LE(d, 1.0);
  }
  // NoC agrees with the recorded Dice sequence; the user stops at the target.
  bool reached = false;
  EXPECT_EQ(c.at("noc90").get<int>(), clicksToReach(dice, 0.90, maxClicks, &reached));
  EXPECT_EQ(c.at("reached90").get<bool>(), reached);
  EXPECT_EQ(c.at("noc85").get<int>(), clicksToReach(dice, 0.85, maxClicks, &reached));
  EXPECT_LE(c.at("noc85").get<int>(), c.at("noc90").get<int>());
  EXPECT_LE(c.at("noc90").get<int>(), maxClicks + 1);
  if (c.at("reached90").get<bool>()) {
    EXPECT_EQ(c.at("noc90").get<int>(), clicks);
  } else {
    EXPECT_EQ(c.at("noc90").get<int>(), maxClicks + 1);
  }
}

TEST_F(InteractiveBench, ProtocolReportIsCompleteAndConsistent) {
  nn::setThreadCount(2);
  const auto cases = phantoms({1, 2, 3});
  auto o = quickOptions();
  std::vector<std::string> lines;
  o.say = [&lines](const std::string& line) { lines.push_back(line); };
  const json r = runInteractiveBench(writeModel(2), cases, o);

  EXPECT_EQ(r.at("format"), "tessera-bench-interactive");
  EXPECT_EQ(r.at("protocol").at("learn_cases"), 2);
  EXPECT_EQ(r.at("protocol").at("held_out"), json::array({"phantom3"}));
  EXPECT_EQ(r.at("protocol").at("axis"), 2);
  EXPECT_FALSE(lines.empty());

  // The sequence: each case clicked, then drawn to the target, then learned from.
  const auto& sequence = r.at("sequence").at("cases");
  ASSERT_EQ(sequence.size(), 2u);
  int64_t clicks = 0, slices = 0, drawnVoxels = 0, manualSlices = 0, manualVoxels = 0;
  double noc90Sum = 0;
  for (size_t k = 0; k < sequence.size(); ++k) {
    const auto& c = sequence[k];
    expectConsistentCase(c, o);
    EXPECT_EQ(c.at("case"), cases[k].name);
    EXPECT_EQ(c.at("learned_before"), k);
    EXPECT_GE(c.at("dice_accepted").get<double>(), 0.90);
    EXPECT_EQ(c.at("interactions").get<int64_t>(), c.at("clicks").get<int64_t>() + c.at("slices_drawn").get<int64_t>());
    const AnnotationEffort manual = manualEffort(cases[k].truth, 2, 1);
    EXPECT_EQ(c.at("manual_interactions").get<int64_t>(), manual.interactions);
    EXPECT_EQ(c.at("manual_voxels").get<int64_t>(), manual.editedVoxels);
    EXPECT_LE(c.at("drawn_voxels").get<int64_t>(), manual.editedVoxels);
    EXPECT_EQ(c.at("drawn_voxels").get<int64_t>() > 0, c.at("slices_drawn").get<int64_t>() > 0);
    clicks += c.at("clicks").get<int64_t>();
    slices += c.at("slices_drawn").get<int64_t>();
    drawnVoxels += c.at("drawn_voxels").get<int64_t>();
    manualSlices += manual.interactions;
    manualVoxels += manual.editedVoxels;
    noc90Sum += c.at("noc90").get<double>();
  }
  EXPECT_DOUBLE_EQ(r.at("sequence").at("mean").at("noc90").get<double>(), noc90Sum / 2);
  EXPECT_EQ(r.at("summary").at("first_case").at("noc90"), sequence[0].at("noc90"));

  const auto& e = r.at("effort");
  EXPECT_EQ(e.at("cases"), 2);
  EXPECT_EQ(e.at("interactive").at("clicks").get<int64_t>(), clicks);
  EXPECT_EQ(e.at("interactive").at("slices_drawn").get<int64_t>(), slices);
  EXPECT_EQ(e.at("interactive").at("interactions").get<int64_t>(), clicks + slices);
  EXPECT_EQ(e.at("interactive").at("edited_voxels").get<int64_t>(), drawnVoxels);
  EXPECT_EQ(e.at("manual").at("interactions").get<int64_t>(), manualSlices);
  EXPECT_EQ(e.at("manual").at("edited_voxels").get<int64_t>(), manualVoxels);
  EXPECT_NEAR(e.at("reduction_interactions_percent").get<double>(),
              100.0 * (1.0 - double(clicks + slices) / double(manualSlices)), 1e-9);
  EXPECT_NEAR(e.at("reduction_voxels_percent").get<double>(), 100.0 * (1.0 - double(drawnVoxels) / double(manualVoxels)), 1e-9);

  // The learning curve: the held-out case with M_0, M_1, M_2.
  const auto& curve = r.at("learning_curve");
  ASSERT_EQ(curve.size(), 3u);
  for (size_t k = 0; k < curve.size(); ++k) {
    EXPECT_EQ(curve[k].at("learned"), k);
    ASSERT_EQ(curve[k].at("cases").size(), 1u);
    const auto& c = curve[k].at("cases")[0];
    expectConsistentCase(c, o);
    EXPECT_EQ(c.at("case"), "phantom3");
    EXPECT_EQ(curve[k].at("mean").at("noc90"), c.at("noc90").get<double>());
    EXPECT_EQ(curve[k].at("mean").at("dice_per_click"), c.at("dice_per_click"));
  }
  EXPECT_EQ(r.at("summary").at("held_out_after").at("learned"), 2);

  // Proxy masks for every case and every k; the number drawn follows the definition.
  const auto& proxy = r.at("proxy");
  ASSERT_EQ(proxy.at("cases").size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const auto& every = proxy.at("cases")[i].at("every");
    ASSERT_EQ(every.size(), 2u);
    for (const auto& p : every) {
      EXPECT_EQ(p.at("drawn").get<size_t>(), everyNthStructureSlice(cases[i].truth, 2, 1, p.at("every").get<int>()).size());
      EXPECT_GT(p.at("dice_propagated").get<double>(), 0.0);
      EXPECT_GT(p.at("dice_nearest_copy").get<double>(), 0.0);
    }
  }
  ASSERT_EQ(proxy.at("mean").size(), 2u);

  // Forgetting: the first case, right after learning it and at the end, with and without replay.
  for (const char* key : {"with_replay", "without_replay"}) {
    const auto& f = r.at("forgetting").at(key);
    ASSERT_EQ(f.at("cases").size(), 1u) << key;
    EXPECT_EQ(f.at("cases")[0].at("case"), "phantom1");
    EXPECT_NEAR(f.at("drop_points").get<double>(),
                100.0 * (f.at("mean_before").get<double>() - f.at("mean_after").get<double>()), 1e-9);
  }
  EXPECT_EQ(r.at("forgetting").at("without_replay").at("replay"), 0);

  const auto& l = r.at("latency");
  EXPECT_EQ(l.at("click").at("size"), json::array({32, 32, 12}));
  EXPECT_EQ(l.at("learn").at("steps"), 2);
  EXPECT_EQ(l.at("propagate").at("slices"), 12);
  EXPECT_FALSE(formatInteractiveBench(r).empty());
  EXPECT_FALSE(fs::exists(o.workDir / "sessions" / "sequence-0"));  // sessions are cleaned up
}

}  // namespace
}  // namespace tessera::interactive
