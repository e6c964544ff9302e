#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tessera/common/Error.h"
#include "tessera/federation/MergePolicy.h"

using namespace tessera::federation;
using nlohmann::json;

namespace {

// The message of the std::invalid_argument thrown by policyFromJson(patch) ("" when none).
std::string policyError(const json& patch, const MergePolicy& base = {}) {
  try {
    policyFromJson(patch, base);
  } catch (const std::invalid_argument& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected std::invalid_argument for " << patch.dump() << ", got: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected std::invalid_argument for " << patch.dump();
  return "";
}

}  // namespace

TEST(MergePolicy, DefaultsAreValid) {
  const MergePolicy p;
  EXPECT_NO_THROW(p.validate());
  EXPECT_EQ(p.strategy, Strategy::FedAvg);
  for (Strategy s : {Strategy::Dafne, Strategy::FedAvg, Strategy::FedBN, Strategy::TrimmedMean}) {
    EXPECT_NO_THROW(defaultPolicyFor(s).validate());
    EXPECT_EQ(defaultPolicyFor(s).strategy, s);
    EXPECT_EQ(strategyFromString(toString(s)), s);
  }
  EXPECT_EQ(toString(Strategy::TrimmedMean), "trimmed-mean");
  EXPECT_EQ(defaultPolicyFor(Strategy::Dafne).roundSize, 1);
  EXPECT_EQ(defaultPolicyFor(Strategy::Dafne).validationTolerance, 1.0);
  EXPECT_EQ(defaultPolicyFor(Strategy::FedBN).validationTolerance, 1.0);
  EXPECT_EQ(defaultPolicyFor(Strategy::FedAvg).validationTolerance, MergePolicy{}.validationTolerance);
  EXPECT_EQ(defaultPolicyFor(Strategy::FedAvg).roundSize, MergePolicy{}.roundSize);
}

TEST(MergePolicy, JsonRoundTripOfEveryField) {
  MergePolicy p;
  p.strategy = Strategy::TrimmedMean;
  p.roundSize = 7;
  p.roundSeconds = 123.5;
  p.dafneWeight = 0.375;
  p.trimFraction = 0.125;
  p.staleness = StalenessMode::Downweight;
  p.stalenessDecay = 0.75;
  p.maxStaleness = 3;
  p.validationTolerance = 0.0625;
  p.maxUpdateBytes = uint64_t{5} << 32;  // beyond 32 bits
  p.maxDeltaNormRatio = 4.5;
  p.maxSamples = 2500;
  p.updatesPerSitePerRound = 2;
  const json j = toJson(p);
  EXPECT_EQ(j.at("strategy"), "trimmed-mean");
  EXPECT_EQ(j.at("staleness"), "downweight");
  EXPECT_EQ(j.at("max_update_bytes").get<uint64_t>(), uint64_t{5} << 32);
  EXPECT_EQ(j.size(), 27u);  // + server_step (MergeTest), server_lr, beta1, beta2, tau, prox_mu (ServerOptimizerTest), site_quorum, site_tolerance, site_gate_seconds, secure_aggregation, secagg_threshold, secagg_step_seconds, secagg_range
  // Through text, as the registry stores it.
  const MergePolicy back = policyFromJson(json::parse(j.dump()));
  EXPECT_EQ(back.strategy, p.strategy);
  EXPECT_EQ(back.roundSize, p.roundSize);
  EXPECT_EQ(back.roundSeconds, p.roundSeconds);
  EXPECT_EQ(back.dafneWeight, p.dafneWeight);
  EXPECT_EQ(back.trimFraction, p.trimFraction);
  EXPECT_EQ(back.staleness, p.staleness);
  EXPECT_EQ(back.stalenessDecay, p.stalenessDecay);
  EXPECT_EQ(back.maxStaleness, p.maxStaleness);
  EXPECT_EQ(back.validationTolerance, p.validationTolerance);
  EXPECT_EQ(back.maxUpdateBytes, p.maxUpdateBytes);
  EXPECT_EQ(back.maxDeltaNormRatio, p.maxDeltaNormRatio);
  EXPECT_EQ(back.maxSamples, p.maxSamples);
  EXPECT_EQ(back.updatesPerSitePerRound, p.updatesPerSitePerRound);
  EXPECT_EQ(toJson(back), j);
}

TEST(MergePolicy, SecureAggregationFieldsRoundTripAndRefuseWhatNeedsSingleUpdates) {
  const MergePolicy p = policyFromJson({{"secure_aggregation", true}, {"round_size", 5}, {"secagg_step_seconds", 30}, {"secagg_range", 0.5}});
  EXPECT_TRUE(p.secureAggregation);
  EXPECT_EQ(p.effectiveSecaggThreshold(), 4);  // ⌈2·5/3⌉
  const MergePolicy back = policyFromJson(toJson(p));
  EXPECT_TRUE(back.secureAggregation);
  EXPECT_EQ(back.secaggStepSeconds, 30);
  EXPECT_EQ(back.secaggRange, 0.5);
  for (const std::string strategy : {"median", "trimmed-mean", "dafne"}) {
    try {
      policyFromJson({{"strategy", strategy}}, p);
      ADD_FAILURE() << strategy << " was accepted under secure aggregation";
    } catch (const tessera::Error& e) {
      EXPECT_EQ(e.code(), tessera::ErrorCode::BadRequest);
      EXPECT_NE(std::string(e.what()).find(strategy), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(policyFromJson({{"site_quorum", 1}}, p), std::invalid_argument);
  EXPECT_THROW(policyFromJson({{"secagg_threshold", 2}}, p), std::invalid_argument);  // not a majority of 5
  EXPECT_THROW(policyFromJson({{"round_size", 1}, {"secagg_threshold", 0}}, p), std::invalid_argument);
  EXPECT_THROW(policyFromJson({{"secure_aggregation", 1}}), std::invalid_argument);
}

TEST(MergePolicy, PatchChangesOnlyNamedFields) {
  MergePolicy base;
  base.roundSize = 9;
  base.trimFraction = 0.3;
  const MergePolicy p = policyFromJson({{"round_seconds", 30}}, base);
  EXPECT_EQ(p.roundSeconds, 30);
  EXPECT_EQ(p.roundSize, 9);
  EXPECT_EQ(p.trimFraction, 0.3);
  EXPECT_EQ(policyFromJson(json::object(), base).roundSize, 9);
  // Switching to dafne without a round size takes dafne's (1); naming one keeps it.
  EXPECT_EQ(policyFromJson({{"strategy", "dafne"}}, base).roundSize, 1);
  EXPECT_EQ(policyFromJson({{"strategy", "dafne"}, {"round_size", 4}}, base).roundSize, 4);
  EXPECT_EQ(policyFromJson({{"strategy", "fedbn"}}, base).roundSize, 9);
}

TEST(MergePolicy, ServerStepRoundTripsAndIsBounded) {
  EXPECT_EQ(MergePolicy{}.serverStep, 1.0) << "plain FedAvg unless asked";
  EXPECT_EQ(policyFromJson({{"server_step", 2.5}}).serverStep, 2.5);
  EXPECT_EQ(toJson(policyFromJson({{"server_step", 3.0}})).at("server_step"), 3.0);
  for (double bad : {0.0, -1.0, 10.5}) {
    EXPECT_NE(policyError({{"server_step", bad}}).find("server_step"), std::string::npos) << bad;
  }
}

TEST(MergePolicy, UnknownFieldIsNamed) {
  const auto message = policyError({{"round_sise", 3}});
  EXPECT_NE(message.find("round_sise"), std::string::npos) << message;
  EXPECT_NE(policyError(json::array({1, 2})).find("object"), std::string::npos);
}

TEST(MergePolicy, WrongTypeIsNamed) {
  const std::vector<std::pair<std::string, json>> cases = {
      {"strategy", 3},           {"round_size", "three"},          {"round_seconds", "long"},
      {"dafne_weight", true},    {"trim_fraction", json::array()}, {"staleness", 1},
      {"staleness_decay", "x"},  {"max_staleness", nullptr},       {"validation_tolerance", json::object()},
      {"max_update_bytes", "1G"}, {"max_delta_norm_ratio", "2"},
      {"max_samples", "many"},   {"updates_per_site_per_round", true}, {"updates_per_site_per_round", 1.5},
      // Integer fields take integers only: a fraction would otherwise be cut silently.
      {"round_size", 2.5},       {"max_staleness", 1.5},           {"max_update_bytes", 4096.5},
  };
  for (const auto& [field, value] : cases) {
    const auto message = policyError({{field, value}});
    EXPECT_NE(message.find(field), std::string::npos) << field << " = " << value.dump() << ": " << message;
  }
}

TEST(MergePolicy, OutOfRangeIsNamed) {
  const std::vector<std::pair<std::string, json>> cases = {
      {"strategy", "krum"},          {"round_size", 0},           {"round_size", 10001},
      {"round_seconds", 0},          {"round_seconds", -5},       {"dafne_weight", -0.1},
      {"dafne_weight", 1.5},         {"trim_fraction", 0.5},      {"trim_fraction", -0.01},
      {"staleness", "sometimes"},    {"staleness_decay", 0},      {"staleness_decay", 1.01},
      {"max_staleness", -1},         {"validation_tolerance", -0.1}, {"validation_tolerance", 2},
      {"max_update_bytes", 1023},    {"max_delta_norm_ratio", 0}, {"max_delta_norm_ratio", -1},
      // Values that do not fit the field must not wrap around into an accepted one.
      {"max_update_bytes", -1},      {"round_size", 4294967297LL}, {"max_staleness", -4294967295LL},
      // A sample count bound that would let one site overflow a round's sum is no bound.
      {"max_samples", 0},            {"max_samples", 1e308},       {"max_samples", -1},
      {"updates_per_site_per_round", 0}, {"updates_per_site_per_round", 10001},
  };
  for (const auto& [field, value] : cases) {
    const auto message = policyError({{field, value}});
    const std::string name = field == "strategy" ? "krum" : field;
    EXPECT_NE(message.find(name), std::string::npos) << field << " = " << value.dump() << ": " << message;
  }
  // Edges that are allowed.
  EXPECT_NO_THROW(policyFromJson({{"round_size", 1}, {"dafne_weight", 0}, {"trim_fraction", 0}, {"staleness_decay", 1},
                                  {"max_staleness", 0}, {"validation_tolerance", 0}, {"max_update_bytes", 1024}}));
  EXPECT_NO_THROW(policyFromJson({{"round_size", 10000}, {"dafne_weight", 1}, {"trim_fraction", 0.49}}));
  EXPECT_NO_THROW(policyFromJson({{"max_samples", 1}, {"updates_per_site_per_round", 1}}));
  EXPECT_NO_THROW(policyFromJson({{"max_samples", 1e15}, {"updates_per_site_per_round", 10000}}));
  // A stored policy from before these fields gets their defaults.
  const MergePolicy old = policyFromJson({{"strategy", "fedavg"}, {"round_size", 3}});
  EXPECT_EQ(old.maxSamples, 1e6);
  EXPECT_EQ(old.updatesPerSitePerRound, 1);
}
