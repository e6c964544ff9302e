#pragma once
// Torch-free entry points into the network code, for the model file code that must not
// include LibTorch headers.

#include <cstdint>
#include <string>
#include <vector>

#include "tessera/nn/NetworkSpec.h"
#include "tessera/nn/Weights.h"

namespace tessera::nn::detail {

struct WeightShape {
  std::string name;
  std::vector<int64_t> shape;
};

// The network's state (parameters, then buffers) initialised from `seed`.
WeightSet initialWeights(const NetworkSpec& spec, uint64_t seed);
// The names and shapes the network built from `spec` expects, in state order.
std::vector<WeightShape> weightLayout(const NetworkSpec& spec);

}  // namespace tessera::nn::detail
