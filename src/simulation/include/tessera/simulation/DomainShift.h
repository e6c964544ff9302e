#pragma once
// How one simulated hospital's scanner differs from another's: contrast (gamma), a smooth bias
// field, noise and a coarser acquisition resolution. Applied to the shared Colin27 T1 so that
// sites see the same anatomy through different scanners, as in multi-centre studies.

#include <cstdint>
#include <string>
#include <vector>

#include "tessera/image/Volume.h"

namespace tessera::simulation {

struct DomainShift {
  std::string name;
  double gamma = 1.0;            // intensity' = max · (intensity / max)^gamma
  double biasAmplitude = 0.0;    // multiplicative field 1 ± amplitude, linear across x and y
  double noiseFraction = 0.0;    // Gaussian noise σ as a fraction of the intensity range
  double resolutionFactor = 1.0; // in-plane voxel size multiplied by this, then back to the grid
  double intensityScale = 1.0;   // a scanner's arbitrary units

  std::string describe() const;  // "gamma 0.70, bias ±0%, noise 2%, resolution 1.0x, scale 1.0"
};

// The shift of site `index` (0-based): three distinct scanners, then variations of them.
DomainShift siteShift(int index);

// A deterministic function of (volume, shift, seed).
image::Volume applyShift(const image::Volume& volume, const DomainShift& shift, uint64_t seed);

}  // namespace tessera::simulation
