// FedAdam and FedYogi against steps worked out by hand (η = 0.1, β1 = 0.9, β2 = 0.99, τ = 1e-3),
// over two consecutive rounds so the moments carried between them matter.

#include <array>
#include <cmath>
#include <optional>

#include "FederationTestSupport.h"
#include "tessera/federation/Merge.h"
#include "tessera/federation/ServerOptimizer.h"

using namespace tessera;
using namespace tessera::federation;
namespace fs = std::filesystem;
using tessera::test::readBytes;
using tessera::test::TempDir;
using tessera::test::updateErrorOf;
using tessera::test::writeBytes;

namespace {

class ServerOptimizerTest : public ::testing::Test {
 protected:
  // One stepped tensor of two weights and one running statistic (averaged, never stepped).
  static common::WeightSet model(float a, float b, float runningMean) {
    return {{"enc.conv.weight", {2}, {a, b}}, {"enc.norm.running_mean", {1}, {runningMean}}};
  }

  UpdateInput delta(const common::WeightSet& d, int64_t base, double samples) {
    const int64_t id = ++updates_;
    ModelUpdate u;
    u.header.task = "brain";
    u.header.baseGeneration = base;
    u.header.kind = UpdateKind::Delta;
    u.header.samples = samples;
    u.weights = d;
    const fs::path path = dir / ("update" + std::to_string(id) + ".tsu");
    writeBytes(path, encodeUpdate(u));
    const auto info = readUpdateFileInfo(path, "u");
    return {id, {path, info.weightsOffset, info.weightsLength}, UpdateKind::Delta, base, samples};
  }

  // One round: merges `updates` onto generation `g` (weights at `current`), commits the candidate
  // and its moments, returns both.
  std::pair<common::WeightSet, common::WeightSet> round(Strategy s, const fs::path& current, int64_t g,
                                                         std::vector<UpdateInput> updates,
                                                         const std::optional<fs::path>& moments) {
    MergeInput in;
    in.current = {current, 0, 0};
    in.currentGeneration = g;
    in.updates = std::move(updates);
    in.policy.strategy = s;
    in.policy.serverLearningRate = 0.1;
    in.policy.beta1 = 0.9;
    in.policy.beta2 = 0.99;
    in.policy.tau = 1e-3;
    common::WeightFileWriter out(dir.path(), 2);
    common::WeightFileWriter momentsOut(dir.path(), momentTensorCount(in.current));
    std::optional<common::WeightsLocation> state;
    if (moments) state = common::WeightsLocation{*moments, 0, 0};
    const MergeOutput merged = mergeWithServerOptimizer(in, state, dir.path(), out, momentsOut);
    const fs::path weightsPath = dir / ("gen" + std::to_string(g + 1) + ".bin");
    const fs::path momentsPath = dir / ("moments" + std::to_string(g + 1) + ".bin");
    out.file().commit(weightsPath);
    momentsOut.file().commit(momentsPath);
    EXPECT_EQ(merged.weightsSha256, common::sha256Hex(readBytes(weightsPath)));
    return {common::decodeWeights(readBytes(weightsPath), "candidate"), common::decodeWeights(readBytes(momentsPath), "moments")};
  }

  // Round 1: Δ = ¼·(0.1, 0.3) + ¾·(0.3, −0.1) = (0.25, 0); round 2: Δ = (−0.2, 0.4).
  std::pair<std::array<common::WeightSet, 2>, std::array<common::WeightSet, 2>> twoRounds(Strategy s) {
    writeBytes(dir / "gen0.bin", common::encodeWeights(model(1.0f, -2.0f, 0.5f)));
    auto [w1, m1] = round(s, dir / "gen0.bin", 0,
                          {delta(model(0.1f, 0.3f, 0.2f), 0, 1), delta(model(0.3f, -0.1f, 0.4f), 0, 3)}, std::nullopt);
    auto [w2, m2] = round(s, dir / "gen1.bin", 1, {delta(model(-0.2f, 0.4f, 0.1f), 1, 5)}, dir / "moments1.bin");
    return {{w1, w2}, {m1, m2}};
  }

  TempDir dir;

 private:
  int64_t updates_ = 0;
};

TEST_F(ServerOptimizerTest, FedAdamTakesThePapersStepsAndCarriesItsMoments) {
  const auto [w, m] = twoRounds(Strategy::FedAdam);
  // Round 1, first weight: m = 0.1·0.25 = 0.025; v = 0.99·τ² + 0.01·0.0625 = 6.2599e-4;
  // x = 1 + 0.1·0.025 / (√v + τ) = 1.09608071. Second weight: Δ = 0, so m = 0 and x stays −2.
  EXPECT_NEAR(w[0][0].values[0], 1.09608071, 2e-6);
  EXPECT_NEAR(w[0][0].values[1], -2.0, 2e-6);
  // Running statistics are averaged as fedavg does: 0.5 + ¼·0.2 + ¾·0.4.
  EXPECT_NEAR(w[0][1].values[0], 0.85, 1e-6);
  ASSERT_EQ(m[0].size(), 2u);  // m and v of the conv weight only
  EXPECT_EQ(m[0][0].name, "m:enc.conv.weight");
  EXPECT_EQ(m[0][1].name, "v:enc.conv.weight");
  EXPECT_NEAR(m[0][0].values[0], 0.025, 1e-7);
  EXPECT_NEAR(m[0][1].values[0], 6.2599e-4, 1e-9);
  EXPECT_NEAR(m[0][1].values[1], 9.9e-7, 1e-10);
  // Round 2 starts from round 1's moments: m = 0.9·0.025 − 0.02 = 0.0025,
  // v = 0.99·6.2599e-4 + 0.01·0.04 = 1.0197301e-3; x = 1.09608071 + 0.1·0.0025/(√v + τ).
  EXPECT_NEAR(w[1][0].values[0], 1.10367183, 2e-6);
  EXPECT_NEAR(w[1][0].values[1], -1.90246816, 2e-6);
  EXPECT_NEAR(w[1][1].values[0], 0.95, 1e-6);
  EXPECT_NEAR(m[1][0].values[1], 0.04, 1e-7);
  EXPECT_NEAR(m[1][1].values[0], 1.0197301e-3, 1e-9);
  EXPECT_NEAR(m[1][1].values[1], 1.6009801e-3, 1e-9);
}

TEST_F(ServerOptimizerTest, FedYogiChangesTheSecondMomentAdditively) {
  const auto [w, m] = twoRounds(Strategy::FedYogi);
  // Round 1: v − Δ² < 0, so v = τ² + 0.01·0.0625 = 6.26e-4 (Adam's decays τ² to 0.99·τ²);
  // the zero Δ leaves v = τ².
  EXPECT_NEAR(m[0][1].values[0], 6.26e-4, 1e-9);
  EXPECT_NEAR(m[0][1].values[1], 1e-6, 1e-10);
  EXPECT_NEAR(w[0][0].values[0], 1.09607997, 2e-6);
  // Round 2: v = 6.26e-4 + 0.01·0.04 (v < Δ² = 0.04) = 1.026e-3 and τ² + 0.01·0.16 = 1.601e-3.
  EXPECT_NEAR(m[1][1].values[0], 1.026e-3, 1e-9);
  EXPECT_NEAR(m[1][1].values[1], 1.601e-3, 1e-9);
  EXPECT_NEAR(w[1][0].values[0], 1.10364856, 2e-6);
  EXPECT_NEAR(w[1][0].values[1], -1.90246875, 2e-6);
}

TEST_F(ServerOptimizerTest, MomentsOfAnotherModelAreRefused) {
  writeBytes(dir / "gen0.bin", common::encodeWeights(model(1.0f, -2.0f, 0.5f)));
  writeBytes(dir / "alien.bin", common::encodeWeights({{"m:other", {2}, {0, 0}}, {"v:other", {2}, {1, 1}}}));
  const auto u = delta(model(0.1f, 0.3f, 0.2f), 0, 1);
  const std::string message = updateErrorOf([&] { round(Strategy::FedAdam, dir / "gen0.bin", 0, {u}, dir / "alien.bin"); }, "corrupt");
  EXPECT_NE(message.find("m:enc.conv.weight"), std::string::npos) << message;
}

TEST(ServerOptimizerPolicy, StrategiesAndFieldsRoundTrip) {
  EXPECT_EQ(strategyFromString("fedadam"), Strategy::FedAdam);
  EXPECT_EQ(strategyFromString("fedyogi"), Strategy::FedYogi);
  EXPECT_EQ(toString(Strategy::FedYogi), "fedyogi");
  const auto p = policyFromJson({{"strategy", "fedadam"}, {"server_lr", 0.05}, {"beta1", 0.8}, {"beta2", 0.95}, {"tau", 0.01}, {"prox_mu", 0.1}});
  EXPECT_DOUBLE_EQ(p.serverLearningRate, 0.05);
  EXPECT_DOUBLE_EQ(p.beta1, 0.8);
  EXPECT_DOUBLE_EQ(p.beta2, 0.95);
  EXPECT_DOUBLE_EQ(p.tau, 0.01);
  EXPECT_DOUBLE_EQ(p.proxMu, 0.1);
  const auto back = policyFromJson(toJson(p));
  EXPECT_DOUBLE_EQ(back.serverLearningRate, 0.05);
  EXPECT_DOUBLE_EQ(back.proxMu, 0.1);
  EXPECT_THROW(policyFromJson({{"beta2", 1.0}}), std::invalid_argument);
  EXPECT_THROW(policyFromJson({{"tau", 0}}), std::invalid_argument);
  EXPECT_THROW(policyFromJson({{"prox_mu", -1}}), std::invalid_argument);
}

}  // namespace
