#pragma once
// Synthetic scans for tests: bright ellipsoids in a noisy, bias-shaded background, with their
// exact label maps. Different seeds give different shapes, positions and contrasts.

#include <cstdint>

#include "tessera/model/CaseFolder.h"
#include "tessera/model/NetworkSpec.h"

namespace tessera::test {

model::TrainingCase makePhantom(uint64_t seed, std::array<int64_t, 3> size = {48, 48, 16},
                             std::array<double, 3> spacing = {1.0, 1.0, 2.0});

// A small, fast network for tests.
model::NetworkSpec tinySpec(int dims = 2);

}  // namespace tessera::test
