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

// Registers a model and its first generation (the model's own generation number) and raises
// DATA/highwater.json to it. `strategy` picks the default policy; throws Error("bad_request")
// if the model's task name breaks the rule of tessera/model/TaskName.h, Error("conflict") if
// the task exists.
nlohmann::json seedModel(Registry& registry, BlobStore& blobs, const model::Model& model, const std::string& strategy);

// Copies a case folder (images/ + labels/) to DATA/validation/<task>/, replacing the old set.
// Returns the number of cases. The task name is checked first (Error("bad_request")), then that
// DATA/registry.sqlite3 has a model for it (Error("not_found"); nothing is created or removed);
// the new set is written beside the old one and swapped in atomically (renameat2
// RENAME_EXCHANGE), so the old set stays whole until the new one is complete.
int setValidationCases(const std::filesystem::path& dataDir, const std::string& task,
                       const std::filesystem::path& casesDir);
// DATA/validation/<task>; Error("bad_request") for a name that breaks the task-name rule.
std::filesystem::path validationDirectory(const std::filesystem::path& dataDir, const std::string& task);

// Applies a partial policy (JSON object) to the task's model; returns the whole new policy.
// Error("bad_request") for an invalid task name, Error("not_found") for an unknown task.
nlohmann::json updatePolicy(Registry& registry, const std::string& task, const nlohmann::json& patch);

// The model (header fields and weights) of one stored generation.
model::Model loadGeneration(const Registry& registry, const BlobStore& blobs, const std::string& task, int64_t generation);

}  // namespace tessera::server
