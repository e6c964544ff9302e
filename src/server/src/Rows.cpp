#include "Rows.h"

#include <chrono>

#include "tessera/common/Error.h"

namespace tessera::server::rows {

double now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

const std::string kModelSelect =
    "SELECT m.id, m.task, m.modality, m.anatomy, m.disease, m.header_json, m.policy_json, m.created_at, "
    "(SELECT max(x.generation) FROM generations x WHERE x.model_id = m.id) FROM models m ";

const std::string kGenerationSelect =
    "SELECT g.model_id, g.generation, g.parent, g.weights_sha256, g.weights_bytes, g.parameters, g.strategy, "
    "g.merged_updates_json, g.validation_json, g.created_at, g.signature FROM generations g ";

const std::string kRejectedSelect =
    "SELECT r.id, r.model_id, r.base_generation, r.strategy, r.update_ids_json, r.validation_json, r.reason, "
    "r.created_at FROM rejected_candidates r ";

const std::string kUpdateSelect =
    "SELECT u.id, u.model_id, u.site_id, s.name, u.base_generation, u.kind, u.samples, u.metrics_json, "
    "u.blob_sha256, u.weights_offset, u.weights_bytes, u.delta_norm, u.status, u.merged_into, u.reason, "
    "u.received_at, u.merged_at FROM updates u LEFT JOIN sites s ON s.id = u.site_id ";

ModelRecord readModel(const db::Statement& q) {
  ModelRecord m;
  m.id = q.integer(0);
  m.task = q.text(1);
  m.modality = q.text(2);
  m.anatomy = q.text(3);
  m.disease = q.text(4);
  m.header = q.json(5);
  m.policy = q.json(6);
  m.createdAt = q.real(7);
  m.latestGeneration = q.optionalInteger(8);
  return m;
}

GenerationRecord readGeneration(const db::Statement& q) {
  GenerationRecord g;
  g.modelId = q.integer(0);
  g.generation = q.integer(1);
  g.parent = q.optionalInteger(2);
  g.weightsSha256 = q.text(3);
  g.weightsBytes = q.integer(4);
  g.parameters = q.integer(5);
  g.strategy = q.text(6);
  g.mergedUpdates = idList(q.json(7), "generation " + std::to_string(g.generation) + " merged_updates_json");
  g.validation = q.json(8);
  g.createdAt = q.real(9);
  g.signature = q.text(10);
  return g;
}

RejectedCandidate readRejected(const db::Statement& q) {
  RejectedCandidate c;
  c.id = q.integer(0);
  c.modelId = q.integer(1);
  c.baseGeneration = q.integer(2);
  c.strategy = q.text(3);
  c.updateIds = idList(q.json(4), "rejected candidate " + std::to_string(c.id) + " update_ids_json");
  c.validation = q.json(5);
  c.reason = q.text(6);
  c.createdAt = q.real(7);
  return c;
}

UpdateRecord readUpdate(const db::Statement& q) {
  UpdateRecord u;
  u.id = q.integer(0);
  u.modelId = q.integer(1);
  u.siteId = q.integer(2);
  u.siteName = q.text(3);
  u.baseGeneration = q.integer(4);
  u.kind = q.text(5);
  u.samples = q.real(6);
  u.metrics = q.json(7);
  u.blobSha256 = q.text(8);
  u.weightsOffset = q.integer(9);
  u.weightsBytes = q.integer(10);
  u.deltaNorm = q.optionalReal(11);
  u.status = q.text(12);
  u.mergedInto = q.optionalInteger(13);
  u.reason = q.text(14);
  u.receivedAt = q.real(15);
  u.mergedAt = q.optionalReal(16);
  return u;
}

Site readSite(const db::Statement& q) { return Site{q.integer(0), q.text(1), q.text(2), q.real(3)}; }

std::vector<int64_t> idList(const nlohmann::json& value, const std::string& where) {
  if (value.is_null()) return {};
  std::vector<int64_t> ids;
  if (value.is_array()) {
    for (const auto& v : value) {
      if (!v.is_number_integer()) break;
      ids.push_back(v.get<int64_t>());
    }
    if (ids.size() == value.size()) return ids;
  }
  throw Error(ErrorCode::Corrupt, "registry " + where + " is not a list of update ids: " + value.dump().substr(0, 80));
}

}  // namespace tessera::server::rows
