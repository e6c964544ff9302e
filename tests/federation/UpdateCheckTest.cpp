#include <cmath>
#include <limits>

#include "FederationTestSupport.h"
#include "tessera/federation/UpdateCheck.h"
#include "tessera/federation/ValidationGate.h"

using namespace tessera;
using namespace tessera::federation;
namespace fs = std::filesystem;
using tessera::test::flatten;
using tessera::test::TempDir;
using tessera::test::tinyWeights;
using tessera::test::updateErrorOf;
using tessera::test::withHeader;
using tessera::test::writeBytes;

namespace {

double norm(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

class UpdateCheckTest : public ::testing::Test {
 protected:
  void SetUp() override { writeBytes(basePath(), common::encodeWeights(base)); }
  fs::path basePath() const { return dir / "base.bin"; }

  fs::path writeUpdate(const common::WeightSet& w, UpdateKind kind = UpdateKind::Delta, const std::string& task = "brain") {
    ModelUpdate u;
    u.header.task = task;
    u.header.baseGeneration = 5;
    u.header.kind = kind;
    u.header.samples = 8;
    u.weights = w;
    const fs::path path = dir / "update.tsu";
    writeBytes(path, encodeUpdate(u));
    return path;
  }

  UpdateCheckResult check(const fs::path& file, const MergePolicy& policy = {}, const std::string& task = "brain") {
    return checkUpdateFile(file, task, {basePath(), 0, 0}, policy);
  }

  TempDir dir;
  const common::WeightSet base = tinyWeights(1.0f, 0.5f);     // ‖base‖ ≈ 23.9
  const common::WeightSet delta = tinyWeights(-0.3f, 0.05f);  // small against it
};

}  // namespace

TEST_F(UpdateCheckTest, ReturnsTheDeltaNormAndTheHeader) {
  const auto result = check(writeUpdate(delta));
  EXPECT_NEAR(result.deltaNorm, norm(flatten(delta)), 1e-9);
  EXPECT_NEAR(result.baseNorm, norm(flatten(base)), 1e-9);
  EXPECT_EQ(result.info.header.task, "brain");
  EXPECT_EQ(result.info.header.baseGeneration, 5);
  EXPECT_EQ(result.info.header.samples, 8);
  EXPECT_EQ(result.info.weightsLength, common::encodeWeights(delta).size());
}

TEST_F(UpdateCheckTest, FullWeightsNormIsTheDistanceToTheBase) {
  common::WeightSet trained = base;
  for (size_t t = 0; t < trained.size(); ++t) {
    for (size_t i = 0; i < trained[t].values.size(); ++i) trained[t].values[i] += delta[t].values[i];
  }
  const auto result = check(writeUpdate(trained, UpdateKind::Weights));
  std::vector<double> diff = flatten(trained);
  const auto b = flatten(base);
  for (size_t i = 0; i < diff.size(); ++i) diff[i] -= b[i];
  EXPECT_NEAR(result.deltaNorm, norm(diff), 1e-6);
  EXPECT_LT(result.deltaNorm, 0.5 * norm(flatten(trained)));  // not the norm of the weights themselves
}

TEST_F(UpdateCheckTest, NormAboveThePolicyRatioIsRefused) {
  // Δ = 3·base: ratio 3.
  common::WeightSet big = base;
  for (auto& t : big) {
    for (auto& v : t.values) v *= 3;
  }
  const auto file = writeUpdate(big);
  MergePolicy p;
  p.maxDeltaNormRatio = 2.0;
  const auto message = updateErrorOf([&] { check(file, p); }, "norm_too_large");
  EXPECT_NE(message.find("3 times"), std::string::npos) << message;
  p.maxDeltaNormRatio = 2.99;
  updateErrorOf([&] { check(file, p); }, "norm_too_large");
  p.maxDeltaNormRatio = 3.01;
  EXPECT_NEAR(check(file, p).deltaNorm, 3 * norm(flatten(base)), 1e-6);
}

TEST_F(UpdateCheckTest, RunningStatisticsAreLeftOutOfBothNorms) {
  // A batch counter that grew by 1000 must neither count as a large update nor hide one.
  auto withCounter = [](common::WeightSet w, float count) {
    w.push_back({"enc.norm.num_batches_tracked", {1}, {count}});
    w.push_back({"enc.norm.running_var", {3}, {count, count, count}});
    return w;
  };
  writeBytes(basePath(), common::encodeWeights(withCounter(base, 5000.0f)));
  const auto result = check(writeUpdate(withCounter(delta, 1000.0f)));
  EXPECT_NEAR(result.deltaNorm, norm(flatten(delta)), 1e-6);
  EXPECT_NEAR(result.baseNorm, norm(flatten(base)), 1e-6);
  common::WeightSet big = base;
  for (auto& t : big)
    for (auto& v : t.values) v *= 3;
  MergePolicy p;
  p.maxDeltaNormRatio = 2.0;
  updateErrorOf([&] { check(writeUpdate(withCounter(big, 1.0f)), p); }, "norm_too_large");
}

TEST_F(UpdateCheckTest, OtherTaskIsTaskMismatch) {
  const auto file = writeUpdate(delta, UpdateKind::Delta, "liver");
  const auto message = updateErrorOf([&] { check(file, {}, "brain"); }, "task_mismatch");
  EXPECT_NE(message.find("liver"), std::string::npos) << message;
}

TEST_F(UpdateCheckTest, OtherNetworkIsShapeMismatch) {
  auto renamed = delta;
  renamed[1].name = "enc.bn.weight";
  auto message = updateErrorOf([&] { check(writeUpdate(renamed)); }, "shape_mismatch");
  EXPECT_NE(message.find("enc.bn.weight"), std::string::npos) << message;

  auto reshaped = delta;
  reshaped[0].shape = {3, 2};
  message = updateErrorOf([&] { check(writeUpdate(reshaped)); }, "shape_mismatch");
  EXPECT_NE(message.find("3x2"), std::string::npos) << message;

  auto fewer = delta;
  fewer.pop_back();
  updateErrorOf([&] { check(writeUpdate(fewer)); }, "shape_mismatch");
  auto more = delta;
  more.push_back({"extra", {1}, {0.5f}});
  updateErrorOf([&] { check(writeUpdate(more)); }, "shape_mismatch");
}

TEST_F(UpdateCheckTest, NonFiniteAndCorruptUpdates) {
  auto nan = delta;
  nan[2].values[1] = std::numeric_limits<float>::quiet_NaN();
  updateErrorOf([&] { check(writeUpdate(nan)); }, "non_finite");

  // One flipped value byte: the structure is intact, the checksum is not.
  const auto file = writeUpdate(delta);
  std::string bytes = tessera::test::readBytes(file);
  bytes[bytes.size() - 3] ^= 0x01;
  writeBytes(file, bytes);
  auto message = updateErrorOf([&] { check(file); }, "bad_update");
  EXPECT_NE(message.find("SHA-256"), std::string::npos) << message;

  // The header's parameter count must match the weights.
  writeBytes(file, withHeader(tessera::test::readBytes(writeUpdate(delta)), [](auto& h) { h["parameters"] = 99; }));
  message = updateErrorOf([&] { check(file); }, "bad_update");
  EXPECT_NE(message.find("parameters"), std::string::npos) << message;

  writeBytes(file, "garbage");
  updateErrorOf([&] { check(file); }, "bad_update");
}

TEST(ValidationGate, PublishesWithinTheTolerance) {
  auto d = decide(0.80, 0.79, 4, 0.02);
  EXPECT_TRUE(d.publish);
  EXPECT_TRUE(d.reason.empty());
  EXPECT_EQ(d.cases, 4);
  EXPECT_EQ(d.diceBefore, 0.80);
  EXPECT_EQ(d.diceAfter, 0.79);
  EXPECT_TRUE(decide(0.80, 0.95, 4, 0.0).publish);  // an improvement always passes
  EXPECT_TRUE(decide(0.80, 0.80, 4, 0.0).publish);  // so does no change at tolerance 0
  EXPECT_TRUE(decide(0.90, 0.0, 4, 1.0).publish);   // tolerance 1: never blocks
}

TEST(ValidationGate, HoldsBackADropBeyondTheTolerance) {
  const auto d = decide(0.80, 0.75, 6, 0.02);
  EXPECT_FALSE(d.publish);
  EXPECT_EQ(d.cases, 6);
  EXPECT_NE(d.reason.find("0.8000"), std::string::npos) << d.reason;
  EXPECT_NE(d.reason.find("0.7500"), std::string::npos) << d.reason;
  EXPECT_NE(d.reason.find("0.0500"), std::string::npos) << d.reason;
  EXPECT_NE(d.reason.find("0.0200"), std::string::npos) << d.reason;
  EXPECT_FALSE(decide(0.80, 0.7999, 6, 0.0).publish);
  EXPECT_FALSE(decide(0.50, 0.30, 6, 0.1).publish);
  EXPECT_TRUE(decide(0.50, 0.41, 6, 0.1).publish);
}

TEST(ValidationGate, NoScoresNoGate) {
  EXPECT_TRUE(decide(std::nullopt, std::nullopt, 0, 0.0).publish);
  EXPECT_TRUE(decide(0.9, std::nullopt, 0, 0.0).publish);
  EXPECT_TRUE(decide(std::nullopt, 0.1, 0, 0.0).publish);
  EXPECT_FALSE(decide(std::nullopt, std::nullopt, 0, 0.0).diceBefore.has_value());
}
