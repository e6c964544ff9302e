#pragma once
// The JSON shapes of docs/API.md for registry records.

#include <nlohmann/json.hpp>

#include "tessera/server/Registry.h"

namespace tessera::server {

nlohmann::json modelSummaryJson(const ModelRecord& model, const std::optional<GenerationRecord>& latest);
nlohmann::json generationJson(const std::string& task, const GenerationRecord& g);
nlohmann::json rejectedCandidateJson(const std::string& task, const RejectedCandidate& c);
nlohmann::json updateJson(const std::string& task, const UpdateRecord& u);

}  // namespace tessera::server
