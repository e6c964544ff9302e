#pragma once
// The server's privacy budget: every accepted update of a site under DP is one release of the
// Gaussian mechanism at its noise multiplier, with q = 1 (the server does not sample sites, so no
// amplification by sampling is claimed), composed per site and model by the RDP accountant and
// converted to ε at the policy's δ (Balle et al. 2020).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tessera/federation/MergePolicy.h"
#include "tessera/server/Registry.h"

namespace tessera::server {

// The noise multiplier an upload is accounted with under `policy` (local: what its header
// declares; central: the policy's), or none when the model runs without DP and the update
// declares none. Throws Error(Rejected) when a local-DP model gets an update without DP or with
// less noise than the policy asks for.
std::optional<double> accountedNoiseMultiplier(const federation::DpPolicy& policy,
                                               const std::optional<double>& declaredNoiseMultiplier,
                                               const std::string& task);

// ε of a list of releases at δ.
double epsilonSpent(const std::vector<PrivacyStep>& steps, double delta);

// Refuses (Error(PrivacyBudgetExceeded), naming the site, the spent and the maximum ε) an update
// with noise multiplier z from a site that has made `earlier` releases, when the policy has a
// budget and the update would take the site above it.
void checkPrivacyBudget(const federation::DpPolicy& policy, const std::vector<PrivacyStep>& earlier, double z,
                        const std::string& site, const std::string& task);

// {"task", "dp": policy's dp, "accounting": "rdp, q = 1, balle", "sites": [{"site", "releases",
//  "epsilon", "epsilon_max" (null: no budget), "remaining" (null: no budget)}]}: every site with
// role "site" (or only `onlySite`), spent ε 0 where nothing was released.
nlohmann::json privacyReport(const Registry& registry, const std::string& task,
                             const std::optional<std::string>& onlySite = std::nullopt);

}  // namespace tessera::server
