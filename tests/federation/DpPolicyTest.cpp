// The privacy parts of the merge policy and of the update header: parsed, checked, round-tripped.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "FederationTestSupport.h"
#include "tessera/federation/MergePolicy.h"
#include "tessera/federation/ModelUpdate.h"

using namespace tessera::federation;
using nlohmann::json;

namespace {

std::string policyProblem(const json& patch) {
  try {
    policyFromJson(patch);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(DpPolicy, OffByDefaultAndRoundTrips) {
  EXPECT_EQ(MergePolicy{}.dp.mode, DpMode::Off);
  const auto p = policyFromJson({{"dp", {{"mode", "central"}, {"clip", 0.5}, {"noise_multiplier", 1.2},
                                         {"epsilon_max", 8}, {"delta", 1e-6}}}});
  EXPECT_EQ(p.dp.mode, DpMode::Central);
  EXPECT_EQ(p.dp.clipNorm, 0.5);
  EXPECT_EQ(p.dp.noiseMultiplier, 1.2);
  EXPECT_EQ(p.dp.epsilonMax, 8);
  EXPECT_EQ(p.dp.delta, 1e-6);
  const auto back = policyFromJson(json::parse(toJson(p).dump()));
  EXPECT_EQ(toJson(back), toJson(p));
  // A partial patch keeps the other dp fields.
  const auto patched = policyFromJson({{"dp", {{"epsilon_max", 4}}}}, p);
  EXPECT_EQ(patched.dp.mode, DpMode::Central);
  EXPECT_EQ(patched.dp.epsilonMax, 4);
}

TEST(DpPolicy, RefusesBadOrContradictoryFields) {
  EXPECT_NE(policyProblem({{"dp", {{"mode", "secret"}}}}).find("dp.mode"), std::string::npos);
  EXPECT_NE(policyProblem({{"dp", {{"clip", 0}}}}).find("dp.clip"), std::string::npos);
  EXPECT_NE(policyProblem({{"dp", {{"clip", "1"}}}}).find("dp.clip"), std::string::npos);
  EXPECT_NE(policyProblem({{"dp", {{"delta", 1}}}}).find("dp.delta"), std::string::npos);
  EXPECT_NE(policyProblem({{"dp", {{"sigma", 1}}}}).find("dp.sigma"), std::string::npos);
  EXPECT_NE(policyProblem({{"dp", {{"epsilon_max", 3}}}}).find("needs 'dp.mode'"), std::string::npos);
  EXPECT_NE(policyProblem({{"strategy", "trimmed-mean"}, {"dp", {{"mode", "central"}}}}).find("fedavg or fedbn"),
            std::string::npos);
  EXPECT_NE(policyProblem({{"dp", "on"}}).find("'dp'"), std::string::npos);
}

TEST(DpPolicy, UpdateHeaderCarriesLocalDpParameters) {
  ModelUpdate u;
  u.header.task = "brain";
  u.header.baseGeneration = 1;
  u.header.samples = 3;
  u.header.dp = DpParameters{0.75, 1.5};
  u.weights = tessera::test::tinyWeights(0.5f, 0.25f);
  const auto back = decodeUpdate(encodeUpdate(u), "u.tsu");
  ASSERT_TRUE(back.header.dp.has_value());
  EXPECT_EQ(back.header.dp->clipNorm, 0.75);
  EXPECT_EQ(back.header.dp->noiseMultiplier, 1.5);
  u.header.dp.reset();
  EXPECT_FALSE(decodeUpdate(encodeUpdate(u), "u.tsu").header.dp.has_value());
  // A malformed declaration is a bad update, not a silently missing one.
  const std::string bad = tessera::test::withHeader(encodeUpdate(u), [](json& h) { h["dp"] = {{"mode", "local"}, {"clip", -1}, {"noise_multiplier", 1}}; });
  EXPECT_NE(tessera::test::updateErrorOf([&] { decodeUpdate(bad, "u.tsu"); }, "bad_update").find("'dp'"), std::string::npos);
}

TEST(DpPolicy, AdaptiveClippingNeedsCentralModeAndEnoughCountNoise) {
  const auto p = policyFromJson({{"dp", {{"mode", "central"}, {"noise_multiplier", 1.0}, {"adaptive_quantile", 0.5},
                                         {"adaptive_count_noise", 1.0}}}});
  EXPECT_EQ(p.dp.adaptiveQuantile, 0.5);
  EXPECT_EQ(p.dp.adaptiveLearningRate, 0.2);
  EXPECT_EQ(policyFromJson(json::parse(toJson(p).dump())).dp.adaptiveCountNoise, 1.0);
  EXPECT_NE(policyProblem({{"dp", {{"mode", "local"}, {"adaptive_quantile", 0.5}, {"adaptive_count_noise", 1}}}}).find("central"),
            std::string::npos);
  EXPECT_NE(policyProblem({{"dp", {{"mode", "central"}, {"noise_multiplier", 1.0}, {"adaptive_quantile", 0.5},
                                   {"adaptive_count_noise", 0.4}}}})
                .find("adaptive_count_noise"),
            std::string::npos);
  EXPECT_NE(policyProblem({{"dp", {{"adaptive_quantile", 1.5}}}}).find("adaptive_quantile"), std::string::npos);
}
