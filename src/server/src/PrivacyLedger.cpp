#include "tessera/server/PrivacyLedger.h"

#include <cmath>
#include <cstdio>
#include <map>

#include "tessera/common/Error.h"
#include "tessera/federation/RdpAccountant.h"

namespace tessera::server {

namespace {

std::string number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.4g", v);
  return text;
}

}  // namespace

std::optional<double> accountedNoiseMultiplier(const federation::DpPolicy& policy,
                                               const std::optional<double>& declared, const std::string& task) {
  using federation::DpMode;
  if (policy.mode == DpMode::Central) return policy.noiseMultiplier;
  if (policy.mode == DpMode::Local) {
    if (!declared) {
      throw Error(ErrorCode::Rejected, "model '" + task +
                                           "' takes only differentially private updates (local DP): push with --dp-clip C "
                                           "--dp-noise z, z >= " + number(policy.noiseMultiplier));
    }
    if (*declared < policy.noiseMultiplier) {
      throw Error(ErrorCode::Rejected, "update declares noise multiplier " + number(*declared) + "; model '" + task +
                                           "' asks for at least " + number(policy.noiseMultiplier) + " ('dp.noise_multiplier')");
    }
  }
  return declared;  // off: accounted when the site chose DP itself, for its own record
}

double epsilonSpent(const std::vector<PrivacyStep>& steps, double delta) {
  if (steps.empty()) return 0;
  federation::RdpAccountant accountant;
  for (const auto& s : steps) {
    if (s.noiseMultiplier <= 0) return INFINITY;  // a release without noise has no finite ε
    accountant.addSteps(s.noiseMultiplier, 1.0);
  }
  return accountant.spent(delta).epsilon;
}

void checkPrivacyBudget(const federation::DpPolicy& policy, const std::vector<PrivacyStep>& earlier, double z,
                        const std::string& site, const std::string& task) {
  if (policy.epsilonMax <= 0) return;
  auto steps = earlier;
  steps.push_back({0, site, z});
  const double after = epsilonSpent(steps, policy.delta);
  if (after > policy.epsilonMax) {
    throw Error(ErrorCode::PrivacyBudgetExceeded,
                "site '" + site + "' has spent epsilon " + number(epsilonSpent(earlier, policy.delta)) + " of its budget " +
                    number(policy.epsilonMax) + " for model '" + task + "' (delta " + number(policy.delta) + ", " +
                    std::to_string(earlier.size()) + " release(s)); this update would take it to " + number(after));
  }
}

nlohmann::json privacyReport(const Registry& registry, const std::string& task, const std::optional<std::string>& onlySite) {
  const auto model = registry.model(task);
  if (!model) throw Error(ErrorCode::NotFound, "no model for task '" + task + "'");
  const auto policy = federation::policyFromJson(model->policy);
  std::map<std::string, std::vector<PrivacyStep>> bySite;
  for (const auto& s : registry.sites())
    if (s.role == "site") bySite[s.name];
  for (const auto& step : registry.privacySteps(model->id)) bySite[step.siteName].push_back(step);
  const bool budget = policy.dp.epsilonMax > 0;
  nlohmann::json sites = nlohmann::json::array();
  for (const auto& [name, steps] : bySite) {
    if (onlySite && name != *onlySite) continue;
    const double eps = epsilonSpent(steps, policy.dp.delta);
    const auto finite = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
    sites.push_back({{"site", name},
                     {"releases", steps.size()},
                     {"epsilon", finite(eps)},
                     {"epsilon_max", budget ? nlohmann::json(policy.dp.epsilonMax) : nlohmann::json(nullptr)},
                     {"remaining", budget ? finite(std::max(0.0, policy.dp.epsilonMax - eps)) : nlohmann::json(nullptr)}});
  }
  return {{"task", task},
          {"dp", federation::toJson(policy)["dp"]},
          {"accounting", "RDP of the Gaussian mechanism, q = 1 (no site sampling), Balle et al. conversion"},
          {"sites", sites}};
}

}  // namespace tessera::server
