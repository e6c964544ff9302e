#include "tessera/federation/MergePolicy.h"

#include <cmath>
#include <limits>
#include <set>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "tessera/federation/SecureAggregationPolicy.h"

namespace tessera::federation {

std::string toString(Strategy strategy) {
  switch (strategy) {
    case Strategy::Dafne: return "dafne";
    case Strategy::FedAvg: return "fedavg";
    case Strategy::FedBN: return "fedbn";
    case Strategy::TrimmedMean: return "trimmed-mean";
    case Strategy::Median: return "median";
    case Strategy::FedAdam: return "fedadam";
    case Strategy::FedYogi: return "fedyogi";
  }
  return "?";
}

Strategy strategyFromString(const std::string& text) {
  if (text == "dafne") return Strategy::Dafne;
  if (text == "fedavg") return Strategy::FedAvg;
  if (text == "fedbn") return Strategy::FedBN;
  if (text == "trimmed-mean") return Strategy::TrimmedMean;
  if (text == "median") return Strategy::Median;
  if (text == "fedadam") return Strategy::FedAdam;
  if (text == "fedyogi") return Strategy::FedYogi;
  throw std::invalid_argument("unknown merge strategy '" + text + "' (use dafne, fedavg, fedbn, trimmed-mean, median, fedadam or fedyogi)");
}

std::string toString(DpMode mode) {
  switch (mode) {
    case DpMode::Off: return "off";
    case DpMode::Local: return "local";
    case DpMode::Central: return "central";
  }
  return "?";
}

namespace {

nlohmann::json dpToJson(const DpPolicy& dp) {
  return {{"mode", toString(dp.mode)}, {"clip", dp.clipNorm}, {"noise_multiplier", dp.noiseMultiplier},
          {"epsilon_max", dp.epsilonMax}, {"delta", dp.delta}, {"adaptive_quantile", dp.adaptiveQuantile},
          {"adaptive_learning_rate", dp.adaptiveLearningRate}, {"adaptive_count_noise", dp.adaptiveCountNoise}};
}

DpPolicy dpFromJson(const nlohmann::json& patch, DpPolicy dp) {
  if (!patch.is_object()) throw std::invalid_argument("policy field 'dp' must be a JSON object, not " + patch.dump());
  for (const auto& [key, value] : patch.items()) {
    if (key == "mode") {
      const std::string m = value.is_string() ? value.get<std::string>() : "";
      if (m == "off") dp.mode = DpMode::Off;
      else if (m == "local") dp.mode = DpMode::Local;
      else if (m == "central") dp.mode = DpMode::Central;
      else throw std::invalid_argument("policy field 'dp.mode' must be 'off', 'local' or 'central', not " + value.dump());
      continue;
    }
    if (!value.is_number()) throw std::invalid_argument("policy field 'dp." + key + "' must be a number, not " + value.dump());
    const double v = value.get<double>();
    if (key == "clip") dp.clipNorm = v;
    else if (key == "noise_multiplier") dp.noiseMultiplier = v;
    else if (key == "epsilon_max") dp.epsilonMax = v;
    else if (key == "delta") dp.delta = v;
    else if (key == "adaptive_quantile") dp.adaptiveQuantile = v;
    else if (key == "adaptive_learning_rate") dp.adaptiveLearningRate = v;
    else if (key == "adaptive_count_noise") dp.adaptiveCountNoise = v;
    else throw std::invalid_argument("unknown policy field 'dp." + key + "'");
  }
  return dp;
}

}  // namespace

void MergePolicy::validate() const {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("policy field " + what);
  };
  need(roundSize >= 1 && roundSize <= 10000, "'round_size' must be 1..10000");
  need(std::isfinite(roundSeconds) && roundSeconds > 0, "'round_seconds' must be positive");
  need(dafneWeight >= 0 && dafneWeight <= 1, "'dafne_weight' must be in [0, 1]");
  need(trimFraction >= 0 && trimFraction < 0.5, "'trim_fraction' must be in [0, 0.5)");
  need(stalenessDecay > 0 && stalenessDecay <= 1, "'staleness_decay' must be in (0, 1]");
  need(maxStaleness >= 0, "'max_staleness' must be >= 0");
  need(validationTolerance >= 0 && validationTolerance <= 1, "'validation_tolerance' must be in [0, 1]");
  need(maxUpdateBytes >= 1024, "'max_update_bytes' must be at least 1024");
  need(std::isfinite(maxDeltaNormRatio) && maxDeltaNormRatio > 0, "'max_delta_norm_ratio' must be positive");
  need(std::isfinite(maxSamples) && maxSamples >= 1 && maxSamples <= 1e15, "'max_samples' must be in [1, 1e15]");
  need(updatesPerSitePerRound >= 1 && updatesPerSitePerRound <= 10000, "'updates_per_site_per_round' must be 1..10000");
  need(std::isfinite(serverLearningRate) && serverLearningRate > 0 && serverLearningRate <= 10, "'server_lr' must be in (0, 10]");
  need(std::isfinite(serverStep) && serverStep > 0 && serverStep <= 10, "'server_step' must be in (0, 10]");
  need(beta1 >= 0 && beta1 < 1, "'beta1' must be in [0, 1)");
  need(beta2 >= 0 && beta2 < 1, "'beta2' must be in [0, 1)");
  need(std::isfinite(tau) && tau > 0 && tau <= 1, "'tau' must be in (0, 1]");
  need(std::isfinite(proxMu) && proxMu >= 0 && proxMu <= 1e6, "'prox_mu' must be in [0, 1e6]");
  need(siteQuorum >= 0 && siteQuorum <= 10000, "'site_quorum' must be 0..10000 (0: no site gate)");
  need(siteTolerance >= 0 && siteTolerance <= 1, "'site_tolerance' must be in [0, 1]");
  need(std::isfinite(siteGateSeconds) && siteGateSeconds > 0, "'site_gate_seconds' must be positive");
  need(std::isfinite(dp.clipNorm) && dp.clipNorm > 0, "'dp.clip' must be positive");
  need(std::isfinite(dp.noiseMultiplier) && dp.noiseMultiplier >= 0, "'dp.noise_multiplier' must be >= 0");
  need(std::isfinite(dp.epsilonMax) && dp.epsilonMax >= 0, "'dp.epsilon_max' must be >= 0 (0: no budget)");
  need(dp.delta > 0 && dp.delta < 1, "'dp.delta' must be in (0, 1)");
  need(dp.epsilonMax == 0 || dp.mode != DpMode::Off, "'dp.epsilon_max' needs 'dp.mode' local or central");
  need(dp.epsilonMax == 0 || dp.mode != DpMode::Central || dp.noiseMultiplier > 0,
       "'dp.noise_multiplier' must be positive for a budget in central mode");
  // Central DP needs each site's influence bounded by C: a mean of clipped deltas. Dafne's
  // running average and the trimmed mean weight and select single updates instead.
  need(dp.mode != DpMode::Central || strategy == Strategy::FedAvg || strategy == Strategy::FedBN,
       "'dp.mode' central works with fedavg or fedbn only");
  need(dp.adaptiveQuantile >= 0 && dp.adaptiveQuantile <= 1, "'dp.adaptive_quantile' must be in [0, 1] (0: off)");
  need(std::isfinite(dp.adaptiveLearningRate) && dp.adaptiveLearningRate > 0, "'dp.adaptive_learning_rate' must be positive");
  need(std::isfinite(dp.adaptiveCountNoise) && dp.adaptiveCountNoise >= 0, "'dp.adaptive_count_noise' must be >= 0");
  need(dp.adaptiveQuantile == 0 || dp.mode == DpMode::Central, "'dp.adaptive_quantile' needs 'dp.mode' central");
  need(dp.adaptiveQuantile == 0 || dp.adaptiveCountNoise > dp.noiseMultiplier / 2,
       "'dp.adaptive_count_noise' must exceed noise_multiplier / 2 with adaptive clipping");
  need(std::isfinite(secaggStepSeconds) && secaggStepSeconds > 0 && secaggStepSeconds <= 86400,
       "'secagg_step_seconds' must be in (0, 86400]");
  need(std::isfinite(secaggRange) && secaggRange > 0 && secaggRange <= 1e6, "'secagg_range' must be in (0, 1e6]");
  need(secaggThreshold == 0 || (secaggThreshold > roundSize / 2 && secaggThreshold <= roundSize),
       "'secagg_threshold' must be 0 (2/3 of round_size) or more than half of round_size and at most round_size");
  if (secureAggregation) {
    requireSecureAggregationCompatible(*this);
    need(roundSize >= 2, "'round_size' must be at least 2 under secure aggregation (one site's sum is its update)");
    // The site gate and the per-update checks need single updates; the masked ones reveal none.
    need(siteQuorum == 0, "'site_quorum' must be 0 under secure aggregation (the site gate is not run on secure rounds)");
    need(dp.epsilonMax == 0,
         "'dp.epsilon_max' must be 0 under secure aggregation (the privacy ledger counts single updates, which these rounds do not record)");
  }
}

int MergePolicy::effectiveSecaggThreshold() const {
  return secaggThreshold > 0 ? secaggThreshold : (2 * roundSize + 2) / 3;
}

MergePolicy defaultPolicyFor(Strategy strategy) {
  MergePolicy p;
  p.strategy = strategy;
  if (strategy == Strategy::Dafne) {
    p.roundSize = 1;
    p.validationTolerance = 1.0;
  }
  // Under FedBN the global model carries no site's normalisation statistics, only the root's, so
  // the server's validation score does not describe any model a site runs: record, don't block.
  if (strategy == Strategy::FedBN) p.validationTolerance = 1.0;
  return p;
}

nlohmann::json toJson(const MergePolicy& p) {
  return {{"strategy", toString(p.strategy)},
          {"round_size", p.roundSize},
          {"round_seconds", p.roundSeconds},
          {"dafne_weight", p.dafneWeight},
          {"trim_fraction", p.trimFraction},
          {"staleness", p.staleness == StalenessMode::Delta ? "delta" : "downweight"},
          {"staleness_decay", p.stalenessDecay},
          {"max_staleness", p.maxStaleness},
          {"validation_tolerance", p.validationTolerance},
          {"max_update_bytes", p.maxUpdateBytes},
          {"max_delta_norm_ratio", p.maxDeltaNormRatio},
          {"max_samples", p.maxSamples},
          {"updates_per_site_per_round", p.updatesPerSitePerRound},
          {"server_step", p.serverStep},
          {"server_lr", p.serverLearningRate},
          {"beta1", p.beta1},
          {"beta2", p.beta2},
          {"tau", p.tau},
          {"prox_mu", p.proxMu},
          {"site_quorum", p.siteQuorum},
          {"site_tolerance", p.siteTolerance},
          {"site_gate_seconds", p.siteGateSeconds},
          {"dp", dpToJson(p.dp)},
          {"secure_aggregation", p.secureAggregation},
          {"secagg_threshold", p.secaggThreshold},
          {"secagg_step_seconds", p.secaggStepSeconds},
          {"secagg_range", p.secaggRange}};
}

MergePolicy policyFromJson(const nlohmann::json& patch, const MergePolicy& base) {
  if (!patch.is_object()) throw std::invalid_argument("policy must be a JSON object");
  MergePolicy p = base;
  for (const auto& [key, value] : patch.items()) {
    // nlohmann's get<> converts booleans to numbers, cuts fractions and wraps integers that do
    // not fit (-1 as max_update_bytes would lift the limit): check types and ranges here.
    auto number = [&] {
      if (!value.is_number()) throw std::invalid_argument("policy field '" + key + "' must be a number, not " + value.dump());
      return value.get<double>();
    };
    auto integer = [&]() -> int64_t {  // an integer that fits an int64
      if (!value.is_number_integer()) throw std::invalid_argument("policy field '" + key + "' must be an integer, not " + value.dump());
      if (value.is_number_unsigned() && value.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        throw std::invalid_argument("policy field '" + key + "' is out of range: " + value.dump());
      }
      return value.get<int64_t>();
    };
    auto smallInteger = [&]() -> int {
      const int64_t v = integer();
      if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()) {
        throw std::invalid_argument("policy field '" + key + "' is out of range: " + value.dump());
      }
      return static_cast<int>(v);
    };
    try {
      if (key == "strategy") {
        const Strategy s = strategyFromString(value.get<std::string>());
        // Switching to dafne without naming the other fields takes Dafne's own defaults.
        if (s != p.strategy && s == Strategy::Dafne && !patch.contains("round_size")) p.roundSize = 1;
        p.strategy = s;
      } else if (key == "round_size") p.roundSize = smallInteger();
      else if (key == "round_seconds") p.roundSeconds = number();
      else if (key == "dafne_weight") p.dafneWeight = number();
      else if (key == "trim_fraction") p.trimFraction = number();
      else if (key == "staleness") {
        const auto s = value.get<std::string>();
        if (s == "delta") p.staleness = StalenessMode::Delta;
        else if (s == "downweight") p.staleness = StalenessMode::Downweight;
        else throw std::invalid_argument("policy field 'staleness' must be 'delta' or 'downweight', not '" + s + "'");
      } else if (key == "staleness_decay") p.stalenessDecay = number();
      else if (key == "max_staleness") p.maxStaleness = smallInteger();
      else if (key == "validation_tolerance") p.validationTolerance = number();
      else if (key == "max_update_bytes") {
        const bool unsignedValue = value.is_number_unsigned();
        const int64_t v = unsignedValue ? 0 : integer();
        if (v < 0) throw std::invalid_argument("policy field 'max_update_bytes' must be at least 1024, not " + value.dump());
        p.maxUpdateBytes = unsignedValue ? value.get<uint64_t>() : static_cast<uint64_t>(v);
      }
      else if (key == "max_delta_norm_ratio") p.maxDeltaNormRatio = number();
      else if (key == "max_samples") p.maxSamples = number();
      else if (key == "updates_per_site_per_round") p.updatesPerSitePerRound = smallInteger();
      else if (key == "server_step") p.serverStep = number();
      else if (key == "server_lr") p.serverLearningRate = number();
      else if (key == "beta1") p.beta1 = number();
      else if (key == "beta2") p.beta2 = number();
      else if (key == "tau") p.tau = number();
      else if (key == "prox_mu") p.proxMu = number();
      else if (key == "site_quorum") p.siteQuorum = smallInteger();
      else if (key == "site_tolerance") p.siteTolerance = number();
      else if (key == "site_gate_seconds") p.siteGateSeconds = number();
      else if (key == "dp") p.dp = dpFromJson(value, p.dp);
      else if (key == "secure_aggregation") {
        if (!value.is_boolean()) throw std::invalid_argument("policy field 'secure_aggregation' must be true or false, not " + value.dump());
        p.secureAggregation = value.get<bool>();
      } else if (key == "secagg_threshold") p.secaggThreshold = smallInteger();
      else if (key == "secagg_step_seconds") p.secaggStepSeconds = number();
      else if (key == "secagg_range") p.secaggRange = number();
      else throw std::invalid_argument("unknown policy field '" + key + "'");
    } catch (const nlohmann::json::exception&) {
      throw std::invalid_argument("policy field '" + key + "' has the wrong type: " + value.dump());
    }
  }
  p.validate();
  return p;
}

}  // namespace tessera::federation
