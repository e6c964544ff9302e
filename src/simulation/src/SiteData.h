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
};

struct FederationData {
  std::vector<SiteData> sites;
  model::TrainingCase validation;  // the server's own slices (reference scanner)
  model::TrainingCase root;        // the operator's slices that train generation 0 (reference scanner)
};

// Disjoint axial slices for every site and the server as long as there are enough brain slices;
// beyond that, sites share slices (still through their own scanner). Deterministic in `seed`.
FederationData prepareFederationData(const std::filesystem::path& dataDir, int sites, int rounds, int slicesPerRound,
                                     int testSlices, int validationSlices, int rootSlices, uint64_t seed);

}  // namespace tessera::simulation
