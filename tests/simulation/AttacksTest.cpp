// Hostile sites of `tessera simulate --malicious K --attack A`: what each attack does to the
// update a site pushes (or to the labels it trains on).
#include <cmath>
#include <filesystem>

#include <gtest/gtest.h>
#include <unistd.h>

#include "tessera/client/ModelCache.h"
#include "tessera/client/SiteState.h"
#include "tessera/simulation/Attacks.h"

namespace tessera::simulation {
namespace {

namespace fs = std::filesystem;

class AttacksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    home = fs::temp_directory_path() / ("tessera-attacks-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(home);
    model::NetworkSpec spec;
    spec.dims = 2;
    spec.axis = 2;
    spec.baseFeatures = 2;
    spec.depth = 2;
    model::TaskInfo info;
    info.name = "brain";
    base = model::initialModel(spec, model::Preprocessing{}, info, 7);
    client::ModelCache(home).store("brain", 0, model::encodeModel(base));
    trained = base;
    for (auto& t : trained.weights)
      for (size_t k = 0; k < t.values.size(); ++k) t.values[k] += 0.01f * static_cast<float>((k % 7) + 1);
    client::TrainedRecord record;
    record.baseGeneration = 0;
    record.samples = 4;
    client::SiteState(home, "brain").writeTrained(trained, record);
  }
  void TearDown() override { fs::remove_all(home); }

  model::Model poisoned() {
    client::SiteState state(home, "brain");
    return state.loadTrained(*state.readTrained());  // also checks the record still matches
  }
  static bool isStatistic(const std::string& name) {
    return name.find("running_") != std::string::npos || name.find("num_batches_tracked") != std::string::npos;
  }

  fs::path home;
  model::Model base, trained;
};

TEST_F(AttacksTest, SignFlipAndScaleRewriteTheDeltaOfLearnableTensors) {
  for (const auto& [attack, factor] : {std::pair{Attack::SignFlip, -2.0}, std::pair{Attack::Scale, 10.0}}) {
    SetUp();
    poisonTrainedModel(home, "brain", attack, 1);
    const model::Model p = poisoned();
    size_t statistics = 0;
    for (size_t t = 0; t < p.weights.size(); ++t) {
      for (size_t k = 0; k < p.weights[t].values.size(); ++k) {
        const double d = double(trained.weights[t].values[k]) - base.weights[t].values[k];
        const double expected = isStatistic(p.weights[t].name) ? trained.weights[t].values[k] : base.weights[t].values[k] + factor * d;
        ASSERT_NEAR(p.weights[t].values[k], expected, 1e-5) << toString(attack) << " " << p.weights[t].name;
      }
      statistics += isStatistic(p.weights[t].name);
    }
    EXPECT_GT(statistics, 0u);  // the network has batch-norm statistics, and they were left alone
  }
}

TEST_F(AttacksTest, NoiseReplacesTheDeltaByNoiseOfThreeTimesItsNorm) {
  poisonTrainedModel(home, "brain", Attack::Noise, 1);
  const model::Model p = poisoned();
  double honest = 0, noisy = 0, dot = 0;
  for (size_t t = 0; t < p.weights.size(); ++t) {
    if (isStatistic(p.weights[t].name)) continue;
    for (size_t k = 0; k < p.weights[t].values.size(); ++k) {
      const double d = double(trained.weights[t].values[k]) - base.weights[t].values[k];
      const double n = double(p.weights[t].values[k]) - base.weights[t].values[k];
      honest += d * d;
      noisy += n * n;
      dot += d * n;
    }
  }
  EXPECT_NEAR(std::sqrt(noisy / honest), 3.0, 0.3);
  EXPECT_LT(std::abs(dot) / std::sqrt(noisy * honest), 0.2);  // unrelated to the site's progress
}

TEST(Attacks, LabelFlipSwapsForegroundAndBackground) {
  image::Geometry g;
  g.size = {4, 4, 1};
  model::TrainingCase c{image::Volume(g, 5.0f), image::Volume(g, 0.0f)};
  c.labels.at(1, 1, 0) = 1.0f;
  const auto flipped = withFlippedLabels(c);
  EXPECT_EQ(flipped.labels.at(1, 1, 0), 0.0f);
  EXPECT_EQ(flipped.labels.at(0, 0, 0), 1.0f);
  EXPECT_EQ(flipped.image.at(0, 0, 0), 5.0f);
  EXPECT_EQ(attackFromString("label-flip"), Attack::LabelFlip);
  EXPECT_FALSE(poisonsTheModel(Attack::LabelFlip));
  EXPECT_THROW(attackFromString("backdoor"), std::invalid_argument);
}

}  // namespace
}  // namespace tessera::simulation
