// The central-mode merge's running statistics: frozen under noise (they cannot take it), but with
// z = 0 (a pure norm bound against hostile sites) merged as the sites' median delta, so that
// weights trained away from the current statistics do not collapse (simulate --malicious).
#include "FederationTestSupport.h"
#include "tessera/federation/CentralDpMerge.h"
#include "tessera/federation/ModelUpdate.h"

using namespace tessera;
using namespace tessera::federation;
namespace fs = std::filesystem;
using tessera::test::TempDir;
using tessera::test::writeBytes;

namespace {

common::WeightSet weights(float conv, float mean, float var) {
  return {{"enc.conv.weight", {2}, {conv, conv}}, {"enc.norm.running_mean", {2}, {mean, mean}},
          {"enc.norm.running_var", {2}, {var, var}}};
}

class CentralDpMergeTest : public ::testing::Test {
 protected:
  void SetUp() override { writeBytes(dir / "current.bin", common::encodeWeights(weights(1.0f, 0.0f, 1.0f))); }

  UpdateInput update(const common::WeightSet& delta) {
    const int64_t id = ++written;
    ModelUpdate u;
    u.header.task = "brain";
    u.header.kind = UpdateKind::Delta;
    u.header.samples = 1;
    u.weights = delta;
    const fs::path path = dir / ("update" + std::to_string(id) + ".tsu");
    writeBytes(path, encodeUpdate(u));
    const auto info = readUpdateFileInfo(path, "u");
    UpdateInput in;
    in.id = id;
    in.weights = {path, info.weightsOffset, info.weightsLength};
    return in;
  }

  common::WeightSet merge(Strategy strategy, double noiseMultiplier) {
    MergeInput in;
    in.current = {dir / "current.bin", 0, 0};
    in.updates = inputs;
    in.policy.strategy = strategy;
    DpParameters dp;
    dp.clipNorm = 1.0;
    dp.noiseMultiplier = noiseMultiplier;
    NoiseSource noise(7);
    common::WeightFileWriter writer(dir.path(), 3);
    mergeWithCentralDp(in, dp, noise, writer);
    const fs::path path = dir / "merged.bin";
    writer.file().commit(path);
    return common::decodeWeights(tessera::test::readBytes(path), "merged");
  }

  TempDir dir;
  std::vector<UpdateInput> inputs;
  int64_t written = 0;
};

TEST_F(CentralDpMergeTest, WithoutNoiseRunningStatisticsTakeTheMedianDeltaAndAnOutlierCannotMoveThem) {
  inputs = {update(weights(0.1f, 0.2f, 0.5f)), update(weights(0.1f, 0.4f, 0.7f)), update(weights(0.1f, 1000.0f, -50.0f))};
  const auto merged = merge(Strategy::FedAvg, 0.0);
  EXPECT_FLOAT_EQ(merged[0].values[0], 1.1f);   // the clipped mean: each delta 0.1·√2 < C
  EXPECT_FLOAT_EQ(merged[1].values[0], 0.4f);   // median of 0.2, 0.4, 1000
  EXPECT_FLOAT_EQ(merged[2].values[1], 1.5f);   // 1 + median of 0.5, 0.7, −50
}

TEST_F(CentralDpMergeTest, AnEvenCountTakesTheMeanOfTheTwoMiddleDeltas) {
  inputs = {update(weights(0, 0.2f, 0)), update(weights(0, 0.4f, 0)), update(weights(0, -9.0f, 0)), update(weights(0, 9.0f, 0))};
  EXPECT_NEAR(merge(Strategy::FedAvg, 0.0)[1].values[1], 0.3, 1e-6);
}

TEST_F(CentralDpMergeTest, UnderNoiseOrFedBnRunningStatisticsStayTheCurrentOnes) {
  inputs = {update(weights(0.1f, 0.2f, 0.5f)), update(weights(0.1f, 0.4f, 0.7f))};
  for (const auto& [strategy, z] : {std::pair{Strategy::FedAvg, 0.5}, std::pair{Strategy::FedBN, 0.0}}) {
    const auto merged = merge(strategy, z);
    EXPECT_EQ(merged[1].values, std::vector<float>({0.0f, 0.0f})) << toString(strategy) << " z " << z;
    EXPECT_EQ(merged[2].values, std::vector<float>({1.0f, 1.0f})) << toString(strategy) << " z " << z;
  }
}

}  // namespace
