#pragma once
// `simulate --unlabeled-sites K`: the last K sites hold scans nobody labels. They train
// semi-supervised on the images alone (`client train --unlabeled`), and each strategy is run again
// with them left out of the federation, scored on the same held-out slices, so the report shows
// what their contribution is worth.

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "SiteData.h"

namespace tessera::simulation {

// The last `count` sites marked unlabelled.
FederationData markUnlabeledSites(FederationData data, int count);
// The same federation with the unlabelled sites marked as left out.
FederationData withoutUnlabeledSites(FederationData data);
int participatingSites(const FederationData& data);

// Where a site's round goes and how its client is told: labelled sites write a case under
// HOME/cases and train with --cases, unlabelled ones write the image alone under HOME/unlabeled
// and train with --unlabeled at `confidence`. Always two arguments.
void writeRound(const std::filesystem::path& home, const std::string& name, const SiteData& site,
                const model::TrainingCase& round);
std::vector<std::string> trainingDataArguments(const std::filesystem::path& home, const SiteData& site,
                                               double confidence = 0.9);

// Trains `model` as the site would alone: supervised on its rounds, or semi-supervised on their
// images for an unlabelled site.
void trainAsSite(model::Model& model, const SiteData& site, const std::vector<model::TrainingCase>& rounds,
                 const nn::TrainOptions& options);

// Appends to `section` (null: starts it as {"sites": K, "unlabeled": [names], "site_names",
// "runs": [], "without_runs": []}) the run without the sites (its rounds, as in "runs") and one {"strategy", "without_run", "with": [final Dice per site], "without": [...],
// "mean_with", "mean_without", "unlabeled_with", "unlabeled_without", "labelled_with",
// "labelled_without"} from a run with the unlabelled sites and the run without them.
void addUnlabeledComparison(nlohmann::json& section, const FederationData& data, const nlohmann::json& with,
                            const nlohmann::json& without);
std::string formatUnlabeledComparison(const nlohmann::json& section);

}  // namespace tessera::simulation
