#pragma once
// `tessera simulate`: a whole federation on one machine. A real server process on loopback, one
// process per site and round (pull, train, push through the public API), sites holding their own
// Colin27 slices seen through their own scanner (DomainShift), a held-out test set per site, and
// the same schedule trained locally without federation as the baseline every site must beat.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tessera::simulation {

struct SimulationOptions {
  // "brain": the brain mask on Colin27 seen through three scanners (learnable by any site alone).
  // "lobes": the six lobes of the AAL atlas on Colin27 (LobeAtlas.h) with the ways real sites
  // differ, each switchable: coverage skew (each site scans its own slab of the head, top to
  // bottom), label skew (each site draws only some lobes; the marginal loss handles the rest),
  // scanner shift (DomainShift) and few labelled slices per site; every site is tested on the
  // same held-out slices spread over the whole brain.
  std::string task = "brain";
  bool coverageSkew = true;
  bool labelSkew = true;
  bool scannerShift = true;  // lobes: off puts every site on the reference scanner
  double inPlaneSpacing = 0;  // mm at the network; 0: the default (slices about 128 voxels across)
  // The upper bound: one model trained on all sites' data pooled, on the same schedule.
  bool centralized = true;
  int sites = 3;
  int generations = 5;  // federation rounds after generation 0
  std::vector<std::string> strategies{"fedavg"};
  std::filesystem::path out = "tessera-simulation";
  uint64_t seed = 1;
  std::filesystem::path dataDir;  // ch2.nii.gz + ch2bet.nii.gz (Debian: /usr/share/mricron/templates)
  int slicesPerRound = 3;         // corrected slices a site gains per round
  int testSlices = 10;            // held-out slices per site
  int validationSlices = 8;       // server-side validation slices (reference scanner)
  int epochsPerRound = 6;
  double learningRate = 5e-4;     // local fine-tuning of a trained generation
  // Generation 0 is a root model the operator trained on a few reference-scanner slices (as
  // Dafne starts from a published model); 0 root epochs: random weights.
  int rootSlices = 12;
  int rootEpochs = 15;
  int baseFeatures = 16;
  // With a target ε: every fedavg/fedbn run is repeated under central DP (noise multiplier found
  // by the accountant for `generations` releases per site at q = 1 and dpDelta; clip C = the
  // median update norm of the non-private run) and the report shows the Dice cost side by side.
  std::optional<double> dpEpsilon;
  // The policy's server_step for fedavg, fedbn and fedprox (1: plain averaging; about the number
  // of sites: the mean delta moves the model as far as pooled training would).
  double serverStep = 1.0;
  double dpDelta = 1e-5;
  // Every strategy that can run under secure aggregation (fedavg, fedbn, fedprox, fedadam,
  // fedyogi) is repeated with the policy's `secure_aggregation` on ("<strategy>+secagg"): the
  // sites' `tessera client push` then runs the protocol, and the report compares the Dice.
  bool secureAggregation = false;
  // Hostile sites (Attacks.h): the last `malicious` sites run `attack` in every round. The report
  // then holds an honest fedavg run, every strategy under attack, and a norm-bounded fedavg under
  // attack (each delta clipped to the median update norm of the honest run, equal weights).
  int malicious = 0;
  std::string attack = "sign-flip";
  // The last `unlabeledSites` sites get their round slices without labels and train
  // semi-supervised on the images (client train --unlabeled); every strategy is then also run
  // without them ("<strategy>-without-unlabeled"), scored on the same held-out slices, and the
  // report compares the two (UnlabeledSites.h).
  int unlabeledSites = 0;
  double unlabeledConfidence = 0.9;  // their pseudo-labels' confidence threshold (client train --confidence)
  std::function<void(const std::string&)> say;  // progress lines
};

// Runs every strategy on the same data and seed; writes OUT/report.json and OUT/dice.png and
// returns the report. Throws std::runtime_error naming the step that failed.
nlohmann::json runSimulation(const SimulationOptions& options);

// The table(s) for stdout: generation × site Dice with the mean, federated vs local-only per
// site, and (for several strategies) the side-by-side comparison.
std::string formatReport(const nlohmann::json& report);

}  // namespace tessera::simulation
