#pragma once
// Network weights as plain named float arrays. Torch-free so that merging, privacy and storage
// code can work on weights without compiling against LibTorch.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::nn {

struct WeightTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;

  int64_t elementCount() const;
};

using WeightSet = std::vector<WeightTensor>;

int64_t parameterCount(const WeightSet& weights);

// Serialises weights as a sequence of (name, shape, little-endian float32) records: data only,
// nothing that a loader would execute.
std::string encodeWeights(const WeightSet& weights);
// Throws ModelError ("<source>: ...") on any malformed, truncated or non-finite content.
WeightSet decodeWeights(std::string_view bytes, const std::string& source);

// Lower-case hex SHA-256.
std::string sha256Hex(std::string_view bytes);

}  // namespace tessera::nn
