#pragma once
// What the federation operator does on the server's own machine (`tessera server admin …`) and
// what the admin API routes share with it.

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "tessera/model/Model.h"

namespace tessera::server {

class Registry;
class BlobStore;

// Registers a model and its first generation (the model's own generation number).
// `strategy` picks the default policy; throws Error("conflict") if the task exists.
nlohmann::json seedModel(Registry& registry, BlobStore& blobs, const model::Model& model, const std::string& strategy);

// Copies a case folder (images/ + labels/) to DATA/validation/<task>/, replacing the old set.
// Returns the number of cases.
int setValidationCases(const std::filesystem::path& dataDir, const std::string& task,
                       const std::filesystem::path& casesDir);
std::filesystem::path validationDirectory(const std::filesystem::path& dataDir, const std::string& task);

// Applies a partial policy (JSON object) to the task's model; returns the whole new policy.
nlohmann::json updatePolicy(Registry& registry, const std::string& task, const nlohmann::json& patch);

// The model (header fields and weights) of one stored generation.
model::Model loadGeneration(const Registry& registry, const BlobStore& blobs, const std::string& task, int64_t generation);

}  // namespace tessera::server
