#include "JsonViews.h"

namespace tessera::server {

namespace {
template <typename T>
nlohmann::json optionalJson(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}
}  // namespace

nlohmann::json modelSummaryJson(const ModelRecord& model, const std::optional<GenerationRecord>& latest) {
  return {{"task", model.task},
          {"modality", model.modality},
          {"anatomy", model.anatomy},
          {"disease", model.disease},
          {"latest_generation", latest ? nlohmann::json(latest->generation) : nlohmann::json(nullptr)},
          {"parameters", latest ? latest->parameters : 0},
          {"strategy", model.policy.value("strategy", "fedavg")},
          // FedProx's μ: sites add (μ/2)·‖w − w_global‖² to their training loss.
          {"prox_mu", model.policy.value("prox_mu", 0.0)},
          // Sites push through the secure-aggregation routes when this is true.
          {"secure_aggregation", model.policy.value("secure_aggregation", false)},
          {"spec", model.header.value("spec", nlohmann::json::object())},
          {"labels", model.header.contains("task") ? model.header["task"].value("labels", nlohmann::json::object())
                                                   : nlohmann::json::object()}};
}

nlohmann::json generationJson(const std::string& task, const GenerationRecord& g) {
  return {{"task", task},
          {"generation", g.generation},
          {"parent", optionalJson(g.parent)},
          {"status", "published"},
          {"weights_sha256", g.weightsSha256},
          {"parameters", g.parameters},
          {"strategy", g.strategy},
          {"merged_updates", g.mergedUpdates},
          {"validation", g.validation},
          {"reason", ""},
          {"created_at", g.createdAt},
          // Over common::generationSignatureMessage(task, generation, parent, weights_sha256).
          {"signature", g.signature.empty() ? nlohmann::json(nullptr) : nlohmann::json(g.signature)}};
}

nlohmann::json rejectedCandidateJson(const std::string& task, const RejectedCandidate& c) {
  return {{"task", task},
          {"generation", nullptr},
          {"parent", c.baseGeneration},
          {"status", "rejected"},
          {"strategy", c.strategy},
          {"merged_updates", c.updateIds},
          {"validation", c.validation},
          {"reason", c.reason},
          {"created_at", c.createdAt}};
}

nlohmann::json updateJson(const std::string& task, const UpdateRecord& u) {
  return {{"id", u.id},
          {"task", task},
          {"site", u.siteName},
          {"base_generation", u.baseGeneration},
          {"kind", u.kind},
          {"samples", u.samples},
          {"metrics", u.metrics},
          {"delta_norm", optionalJson(u.deltaNorm)},
          {"status", u.status},
          {"merged_into", optionalJson(u.mergedInto)},
          {"reason", u.reason},
          {"received_at", u.receivedAt}};
}

}  // namespace tessera::server
