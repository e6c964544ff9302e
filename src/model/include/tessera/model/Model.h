#pragma once
// A segmentation model as data: network spec, preprocessing, task, lineage and weights, and its
// `.tsm` file. No LibTorch here: storage, federation and DICOM code use models without it.
//
// File layout: the container of tessera/common/Container.h with magic "TSMODEL" and a JSON
// header (format "tessera-model", spec, preprocessing, task, generation, parent generation,
// parameter count, weights byte count and SHA-256), then the weight records.
// Nothing in the file is code: loading it parses JSON and float arrays only.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "tessera/common/WeightRecords.h"
#include "tessera/model/NetworkSpec.h"
#include "tessera/model/Preprocessing.h"
#include "tessera/model/TaskInfo.h"

namespace tessera::model {

struct Model {
  NetworkSpec spec;
  Preprocessing preprocessing;
  TaskInfo task;
  int64_t generation = 0;
  std::optional<int64_t> parentGeneration;
  common::WeightSet weights;  // in the order of weightLayout(spec)

  // SHA-256 of encodeWeights(weights).
  std::string weightsSha256() const;
};

// A model with freshly initialised weights drawn from `seed`: convolutions uniform in
// ±1/sqrt(fan-in) (PyTorch's default), normalisation scale 1, shift 0, running statistics 0/1.
Model initialModel(const NetworkSpec& spec, const Preprocessing& prep, const TaskInfo& task, uint64_t seed);

std::string encodeModel(const Model& model);
// Everything of the file before the weight records, for writers that stream the weights from
// elsewhere (the server sends a stored weights blob after this prefix). `model.weights` is unused.
std::string encodeModelPrefix(const Model& model, int64_t parameters, uint64_t weightsBytes,
                              const std::string& weightsSha256);
// Throws Error(BadModel, "<source>: problem") for foreign, truncated, corrupted or inconsistent
// content, including weights whose names or shapes do not match the spec's network.
Model decodeModel(std::string_view bytes, const std::string& source);

// Throws Error(ShapeMismatch) when `weights` are not the tensors of `spec`'s network.
void checkWeightLayout(const NetworkSpec& spec, const common::WeightSet& weights, const std::string& source);

// Atomic: temp file, fsync, rename, directory fsync.
void saveModel(const Model& model, const std::filesystem::path& path);
Model loadModel(const std::filesystem::path& path);

}  // namespace tessera::model
