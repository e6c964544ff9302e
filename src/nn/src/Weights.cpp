#include "tessera/nn/Weights.h"

#include <cmath>
#include <limits>


#include "ByteIO.h"
#include "tessera/common/Sha256.h"

namespace tessera::nn {

namespace {
constexpr char kWeightsMagic[4] = {'T', 'S', 'W', 'T'};
constexpr uint8_t kFloat32 = 1;
constexpr uint32_t kMaxTensors = 100000;
constexpr uint32_t kMaxNameLength = 1024;
constexpr uint8_t kMaxRank = 8;
}  // namespace

int64_t WeightTensor::elementCount() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int64_t parameterCount(const WeightSet& weights) {
  int64_t n = 0;
  for (const auto& t : weights) n += t.elementCount();
  return n;
}

std::string encodeWeights(const WeightSet& weights) {
  detail::ByteWriter w;
  w.putBytes(std::string_view(kWeightsMagic, 4));
  w.put<uint32_t>(static_cast<uint32_t>(weights.size()));
  for (const auto& t : weights) {
    w.put<uint16_t>(static_cast<uint16_t>(t.name.size()));
    w.putBytes(t.name);
    w.put<uint8_t>(kFloat32);
    w.put<uint8_t>(static_cast<uint8_t>(t.shape.size()));
    for (int64_t d : t.shape) w.put<int64_t>(d);
    w.putBytes(std::string_view(reinterpret_cast<const char*>(t.values.data()),
                                t.values.size() * sizeof(float)));
  }
  return std::move(w.str());
}

WeightSet decodeWeights(std::string_view bytes, const std::string& source) {
  detail::ByteReader r(bytes, source);
  if (r.getBytes(4, "weights magic") != std::string_view(kWeightsMagic, 4)) {
    r.fail("weights section does not start with 'TSWT'");
  }
  const auto count = r.get<uint32_t>("tensor count");
  if (count > kMaxTensors) r.fail("implausible tensor count " + std::to_string(count));
  WeightSet weights;
  weights.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    WeightTensor t;
    const auto nameLength = r.get<uint16_t>("tensor name length");
    if (nameLength == 0 || nameLength > kMaxNameLength) {
      r.fail("tensor " + std::to_string(i) + " has a name of length " + std::to_string(nameLength));
    }
    t.name = std::string(r.getBytes(nameLength, "tensor name"));
    const auto dtype = r.get<uint8_t>("tensor dtype");
    if (dtype != kFloat32) r.fail("tensor '" + t.name + "' has unknown dtype " + std::to_string(dtype));
    const auto rank = r.get<uint8_t>("tensor rank");
    if (rank > kMaxRank) r.fail("tensor '" + t.name + "' has rank " + std::to_string(rank));
    uint64_t elements = 1;
    for (uint8_t d = 0; d < rank; ++d) {
      const auto dim = r.get<int64_t>("tensor dimension");
      if (dim < 0 || dim > (int64_t{1} << 32)) {
        r.fail("tensor '" + t.name + "' has dimension " + std::to_string(dim));
      }
      t.shape.push_back(dim);
      elements *= static_cast<uint64_t>(dim);
      if (elements > r.remaining() / sizeof(float) + 1) {
        r.fail("tensor '" + t.name + "' claims more values than the file holds");
      }
    }
    auto data = r.getBytes(elements * sizeof(float), "tensor values");
    t.values.resize(elements);
    std::memcpy(t.values.data(), data.data(), data.size());
    for (float v : t.values) {
      if (!std::isfinite(v)) r.fail("tensor '" + t.name + "' contains NaN or Inf");
    }
    weights.push_back(std::move(t));
  }
  if (r.remaining() != 0) r.fail(std::to_string(r.remaining()) + " unexpected bytes after the last tensor");
  return weights;
}

std::string sha256Hex(std::string_view bytes) { return common::sha256Hex(bytes); }

}  // namespace tessera::nn
