#pragma once
// A trained (or freshly initialised) segmentation model and its `.tsm` file format.
//
// File layout (all integers little-endian):
//   8 bytes  magic "TSMODEL\0"
//   4 bytes  format version (1)
//   8 bytes  header length H, then H bytes of UTF-8 JSON (spec, preprocessing, task,
//            generation, parent generation, weights byte count and SHA-256)
//   8 bytes  weights length W, then W bytes produced by encodeWeights()
// Nothing in the file is code: loading it parses JSON and float arrays only.

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "tessera/nn/NetworkSpec.h"
#include "tessera/nn/Preprocessing.h"
#include "tessera/nn/TaskInfo.h"
#include "tessera/nn/Weights.h"

namespace tessera::nn {

struct Model {
  NetworkSpec spec;
  Preprocessing preprocessing;
  TaskInfo task;
  int64_t generation = 0;
  std::optional<int64_t> parentGeneration;
  WeightSet weights;  // in the order of the network's state dict

  // SHA-256 of encodeWeights(weights).
  std::string weightsSha256() const;
};

// A model with the network's initial weights drawn from `seed`.
Model initialModel(const NetworkSpec& spec, const Preprocessing& prep, const TaskInfo& task,
                   uint64_t seed);

std::string encodeModel(const Model& model);
// Everything of the file before the weights bytes, for writers that stream the weights section
// from elsewhere (the server sends a stored weights blob after this prefix). `model.weights`
// is not used.
std::string encodeModelPrefix(const Model& model, int64_t parameters, uint64_t weightsBytes,
                              const std::string& weightsSha256);
// Throws ModelError ("<source>: problem") for foreign, truncated, corrupted or inconsistent
// content, including weights whose names or shapes do not match the spec's network.
Model decodeModel(std::string_view bytes, const std::string& source);

// Atomic: temp file, fsync, rename.
void saveModel(const Model& model, const std::filesystem::path& path);
Model loadModel(const std::filesystem::path& path);

}  // namespace tessera::nn
