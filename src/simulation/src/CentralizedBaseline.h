#pragma once
// The upper bound federation aims at: one model trained on every site's data pooled in one place,
// on the federation's schedule (each round the cases every site has gained so far, the same
// epochs per round, so as many steps as all sites together), scored on each site's held-out slices.

#include <string>

#include <nlohmann/json.hpp>

#include "SiteData.h"
#include "tessera/model/Model.h"
#include "tessera/simulation/Simulation.h"

namespace tessera::simulation {

// One entry per site, like the local-only baseline: {"site", "dice_per_round"} (round 0 = root).
nlohmann::json centralizedBaseline(const SimulationOptions& o, const FederationData& data, const model::Model& root);

}  // namespace tessera::simulation

namespace tessera::simulation {

// The three lines every report shows, final round, per site and mean: local-only, each federated
// run, centralized (when run), and per run the goal on the skewed task: federated ≥
// local-only + 0.05 mean Dice and within 0.01 of centralized.
nlohmann::json threeLines(const nlohmann::json& report);
std::string formatThreeLines(const nlohmann::json& threeLines);

}  // namespace tessera::simulation
