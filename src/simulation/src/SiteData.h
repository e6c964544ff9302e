#pragma once
// The simulated hospitals' data, cut from the Colin27 T1 and its brain mask.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "tessera/nn/Training.h"
#include "tessera/simulation/DomainShift.h"

namespace tessera::simulation {

struct SiteData {
  std::string name;
  DomainShift shift;
  std::vector<model::TrainingCase> rounds;  // corrected slices arriving in each round
  model::TrainingCase test;                 // held-out slices, same scanner
  int trainSlices = 0;
  std::string coverage = "whole brain";     // the slab of the head its scans cover
  std::vector<int> annotatedLabels;         // labels its annotators draw (empty: all)
  // simulate --unlabeled-sites: its round slices reach it without labels (it trains
  // semi-supervised on the images alone); `leftOut`: it does not take part in this federation
  // run (the comparison without those sites) but is still scored.
  bool unlabeled = false;
  bool leftOut = false;
};

struct FederationData {
  std::vector<SiteData> sites;
  model::TrainingCase validation;  // the server's own slices (reference scanner)
  model::TrainingCase root;        // the operator's slices that train generation 0 (reference scanner)
};

// The ways the lobes task's sites differ (each switchable, Simulation.h).
struct SiteSkew {
  bool coverage = true;  // each site's scans cover its own slab of the head, top to bottom
  bool labels = true;    // each site annotates only some lobes
  bool scanner = true;   // each site's scanner differs (DomainShift); off: the reference scanner
};

// The lobes task (LobeAtlas.h) on ch2bet: one held-out set of `testSlices` axial slices spread
// over the whole brain that no site trains on, seen by every site through its own scanner; the
// server's validation and root slices (reference scanner, every lobe) spread the same way; the
// rest split between the sites as the skew says. Deterministic in `seed`.
FederationData prepareLobesData(const std::filesystem::path& dataDir, int sites, int rounds, int slicesPerRound,
                                int testSlices, int validationSlices, int rootSlices, const SiteSkew& skew, uint64_t seed);

// Disjoint axial slices for every site and the server as long as there are enough brain slices;
// beyond that, sites share slices (still through their own scanner). Deterministic in `seed`.
FederationData prepareFederationData(const std::filesystem::path& dataDir, int sites, int rounds, int slicesPerRound,
                                     int testSlices, int validationSlices, int rootSlices, uint64_t seed);

}  // namespace tessera::simulation
