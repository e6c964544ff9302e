// The standard protocol end to end: a small guidance model trained with simulated clicks, a
// session on a phantom it has not seen, and the simulated user clicking through the session
// (every click re-infers through the model) until Dice >= 0.90.
#include <iostream>
#include <random>

#include <nlohmann/json.hpp>

#include "SessionTestSupport.h"
#include "tessera/image/Metrics.h"
#include "tessera/interactive/Session.h"
#include "tessera/interactive/SimulatedUser.h"
#include "tessera/nn/Runtime.h"
#include "tessera/nn/Training.h"

namespace fs = std::filesystem;
using namespace tessera;

namespace {

class SessionLoopTest : public test::SessionFixture {};

}  // namespace

TEST_F(SessionLoopTest, SimulatedUserReachesTheTargetThroughTheModel) {
  nn::setThreadCount(1);  // deterministic training
  auto spec = test::tinySpec(2);
  spec.guidanceChannels = 2;
  model::Preprocessing prep;
  prep.targetSpacing = {1.0, 1.0, 0.0};
  auto model = model::initialModel(spec, prep, model::TaskInfo{}, 5);
  std::vector<model::TrainingCase> cases;
  for (uint64_t seed : {11, 12, 13, 14}) cases.push_back(test::makePhantom(seed));
  nn::TrainOptions options;
  options.epochs = 12;
  options.seed = 3;
  nn::trainModel(model, cases, options);
  const auto modelPath = root_ / "guided.tsm";
  model::saveModel(model, modelPath);

  // A scan noisier than any the model was trained on: its automatic prediction misses parts, and
  // the clicks have to bring them back.
  auto scan = phantom_.image;
  std::mt19937_64 rng(9);
  std::normal_distribution<float> noise(0.0f, 70.0f);
  for (auto& v : scan.voxels) v += noise(rng);
  auto session = interactive::Session::start(root_ / "s", modelPath, scan, "noisy phantom");
  const auto result = interactive::runClickLoop(session, phantom_.labels);
  std::cerr << toJson(result).dump() << "\n";
  // On this scan the model alone falls short (Dice about 0.79), so the target is the clicks' work.
  EXPECT_LT(result.dicePerClick.front(), 0.85);
  EXPECT_GE(result.noc90, 1);
  EXPECT_TRUE(result.reached90);
  EXPECT_GE(result.dicePerClick.back(), 0.90);
  EXPECT_LE(result.noc85, result.noc90);
  EXPECT_EQ(session.clicks().size(), result.clicks.size());
}
