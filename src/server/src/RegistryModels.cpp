// Registry: models, their generations, and the two outcomes of a merge round (a published
// generation or a rejected candidate), each recorded together with its updates' new state.
#include <algorithm>
#include <set>

#include "Database.h"
#include "Rows.h"
#include "tessera/server/BlobStore.h"
#include "tessera/server/Registry.h"
#include "tessera/common/Error.h"

namespace tessera::server {

using nlohmann::json;

namespace {

void requireSha(const std::string& sha, const char* field) {
  if (!isSha256Hex(sha)) {
    throw Error(ErrorCode::BadRequest, std::string(field) + " '" + sha.substr(0, 80) + "' is not a SHA-256 (64 lower-case hex digits)");
  }
}

// The round's update list; the record may repeat it, but must not contradict it.
std::vector<int64_t> roundUpdates(const std::vector<int64_t>& recorded, const std::vector<int64_t>& updateIds,
                                  const char* field) {
  if (!recorded.empty() && recorded != updateIds) {
    throw Error(ErrorCode::BadRequest, std::string(field) + " " + json(recorded).dump() +
                                          " differs from the updates being marked " + json(updateIds).dump());
  }
  std::set<int64_t> seen;
  for (const int64_t id : updateIds) {
    if (!seen.insert(id).second) throw Error(ErrorCode::BadRequest, "update " + std::to_string(id) + " is listed twice");
  }
  return updateIds;
}

void requireModel(db::Connection& c, int64_t modelId) {
  db::Statement q(c, "checking a model exists", "SELECT 1 FROM models WHERE id = ?");
  q.bind(1, modelId);
  if (!q.step()) throw Error(ErrorCode::NotFound, "no model with id " + std::to_string(modelId));
}

void insertGeneration(db::Connection& c, const GenerationRecord& g, int64_t modelId, const std::vector<int64_t>& merged,
                      const std::string& signature) {
  requireSha(g.weightsSha256, "weights_sha256");
  try {
    db::Statement q(c, "adding a generation",
                    "INSERT INTO generations(model_id, generation, parent, weights_sha256, weights_bytes, parameters, strategy, "
                    "merged_updates_json, validation_json, created_at, signature) VALUES(?,?,?,?,?,?,?,?,?,?,?)");
    q.bind(1, modelId).bind(2, g.generation).bind(3, g.parent).bind(4, g.weightsSha256).bind(5, g.weightsBytes);
    q.bind(6, g.parameters).bind(7, g.strategy).bindJson(8, json(merged)).bindJson(9, g.validation);
    q.bind(10, g.createdAt > 0 ? g.createdAt : rows::now()).bind(11, signature).run();
  } catch (const Error& e) {
    if (e.code() != ErrorCode::Conflict) throw;
    throw Error(ErrorCode::Conflict, "model " + std::to_string(modelId) + " already has generation " + std::to_string(g.generation));
  }
}

// Moves each listed update from queued to its outcome with `change` (?3 = update id,
// ?4 = model id); any update not queued for this model aborts the caller's transaction, so a
// round is recorded whole or not at all.
void settleUpdates(db::Connection& c, int64_t modelId, const std::vector<int64_t>& ids, db::Statement& change) {
  for (const int64_t id : ids) {
    change.reset().bind(3, id).bind(4, modelId).run();
    if (c.changes() == 1) continue;
    db::Statement why(c, "explaining a refused update", "SELECT status, model_id FROM updates WHERE id = ?");
    why.bind(1, id);
    if (!why.step()) throw Error(ErrorCode::Conflict, "update " + std::to_string(id) + " does not exist");
    if (why.integer(1) != modelId) {
      throw Error(ErrorCode::Conflict, "update " + std::to_string(id) + " belongs to model " + std::to_string(why.integer(1)) +
                                         ", not " + std::to_string(modelId));
    }
    throw Error(ErrorCode::Conflict, "update " + std::to_string(id) + " is " + why.text(0) + ", not queued");
  }
}

}  // namespace

ModelRecord Registry::addModel(const std::string& task, const std::string& modality, const std::string& anatomy,
                               const std::string& disease, const json& header, const json& policy,
                               const GenerationRecord& first) {
  if (task.empty()) throw Error(ErrorCode::BadRequest, "a model needs a task name");
  ModelRecord m{0, task, modality, anatomy, disease, header, policy, rows::now(), first.generation};
  requireSha(first.weightsSha256, "weights_sha256");
  const std::string signature = signGeneration(task, first);
  std::lock_guard lock(mutex_);
  db_->transaction([&] {
    try {
      db::Statement q(*db_, "adding a model",
                      "INSERT INTO models(task, modality, anatomy, disease, header_json, policy_json, created_at) "
                      "VALUES(?,?,?,?,?,?,?)");
      q.bind(1, task).bind(2, modality).bind(3, anatomy).bind(4, disease);
      q.bind(5, header.dump(-1, ' ', false, json::error_handler_t::replace));
      q.bind(6, policy.dump(-1, ' ', false, json::error_handler_t::replace)).bind(7, m.createdAt).run();
    } catch (const Error& e) {
      if (e.code() == ErrorCode::Conflict) throw Error(ErrorCode::Conflict, "a model for task '" + task + "' already exists");
      throw;
    }
    m.id = db_->lastInsertId();
    insertGeneration(*db_, first, m.id, first.mergedUpdates, signature);
  });
  return m;
}

std::optional<ModelRecord> Registry::model(const std::string& task) const {
  std::lock_guard lock(mutex_);
  db::Statement q(*db_, "finding a model by task", (rows::kModelSelect + "WHERE m.task = ?").c_str());
  q.bind(1, task);
  if (!q.step()) return std::nullopt;
  return rows::readModel(q);
}

std::optional<ModelRecord> Registry::modelById(int64_t id) const {
  std::lock_guard lock(mutex_);
  db::Statement q(*db_, "finding a model by id", (rows::kModelSelect + "WHERE m.id = ?").c_str());
  q.bind(1, id);
  if (!q.step()) return std::nullopt;
  return rows::readModel(q);
}

std::vector<ModelRecord> Registry::models(const ModelFilter& f) const {
  std::lock_guard lock(mutex_);
  // SQLite's lower() folds ASCII only, which is what task and DICOM-style modality names use.
  db::Statement q(*db_, "listing models",
                  (rows::kModelSelect +
                   "WHERE (?1 = '' OR lower(m.task) = lower(?1)) AND (?2 = '' OR lower(m.modality) = lower(?2)) "
                   "AND (?3 = '' OR lower(m.anatomy) = lower(?3)) AND (?4 = '' OR lower(m.disease) = lower(?4)) "
                   "ORDER BY m.id")
                      .c_str());
  q.bind(1, f.task).bind(2, f.modality).bind(3, f.anatomy).bind(4, f.disease);
  std::vector<ModelRecord> out;
  while (q.step()) out.push_back(rows::readModel(q));
  return out;
}

void Registry::setPolicy(int64_t modelId, const json& policy) {
  if (!policy.is_object()) throw Error(ErrorCode::BadRequest, "a policy must be a JSON object, not " + policy.dump().substr(0, 80));
  std::lock_guard lock(mutex_);
  db::Statement q(*db_, "changing a policy", "UPDATE models SET policy_json = ? WHERE id = ?");
  q.bindJson(1, policy).bind(2, modelId).run();
  if (db_->changes() != 1) throw Error(ErrorCode::NotFound, "no model with id " + std::to_string(modelId));
}

std::optional<GenerationRecord> Registry::generation(int64_t modelId, int64_t generation) const {
  std::lock_guard lock(mutex_);
  db::Statement q(*db_, "finding a generation", (rows::kGenerationSelect + "WHERE g.model_id = ? AND g.generation = ?").c_str());
  q.bind(1, modelId).bind(2, generation);
  if (!q.step()) return std::nullopt;
  return rows::readGeneration(q);
}

std::optional<GenerationRecord> Registry::latestGeneration(int64_t modelId) const {
  std::lock_guard lock(mutex_);
  db::Statement q(*db_, "finding the latest generation",
                  (rows::kGenerationSelect + "WHERE g.model_id = ? ORDER BY g.generation DESC LIMIT 1").c_str());
  q.bind(1, modelId);
  if (!q.step()) return std::nullopt;
  return rows::readGeneration(q);
}

std::vector<GenerationRecord> Registry::generations(int64_t modelId) const {
  std::lock_guard lock(mutex_);
  db::Statement q(*db_, "listing generations", (rows::kGenerationSelect + "WHERE g.model_id = ? ORDER BY g.generation").c_str());
  q.bind(1, modelId);
  std::vector<GenerationRecord> out;
  while (q.step()) out.push_back(rows::readGeneration(q));
  return out;
}

std::vector<RejectedCandidate> Registry::rejectedCandidates(int64_t modelId) const {
  std::lock_guard lock(mutex_);
  db::Statement q(*db_, "listing rejected candidates", (rows::kRejectedSelect + "WHERE r.model_id = ? ORDER BY r.id").c_str());
  q.bind(1, modelId);
  std::vector<RejectedCandidate> out;
  while (q.step()) out.push_back(rows::readRejected(q));
  return out;
}

void Registry::publishGeneration(const GenerationRecord& g, const std::vector<int64_t>& updateIds) {
  const auto merged = roundUpdates(g.mergedUpdates, updateIds, "merged_updates");
  const double at = rows::now();
  // An unknown model has no task to sign for; requireModel below refuses it.
  const auto model = modelById(g.modelId);
  requireSha(g.weightsSha256, "weights_sha256");
  const std::string signature = model ? signGeneration(model->task, g) : std::string();
  std::lock_guard lock(mutex_);
  db_->transaction([&] {
    requireModel(*db_, g.modelId);
    insertGeneration(*db_, g, g.modelId, merged, signature);
    db::Statement change(*db_, "marking an update merged",
                         "UPDATE updates SET status = 'merged', merged_into = ?1, merged_at = ?2, reason = NULL "
                         "WHERE id = ?3 AND model_id = ?4 AND status = 'queued'");
    change.bind(1, g.generation).bind(2, at);
    settleUpdates(*db_, g.modelId, merged, change);
  });
}

void Registry::rejectCandidate(const RejectedCandidate& c, const std::vector<int64_t>& updateIds) {
  const auto ids = roundUpdates(c.updateIds, updateIds, "update_ids");
  const double at = rows::now();
  std::lock_guard lock(mutex_);
  db_->transaction([&] {
    requireModel(*db_, c.modelId);
    db::Statement q(*db_, "recording a rejected candidate",
                    "INSERT INTO rejected_candidates(model_id, base_generation, strategy, update_ids_json, validation_json, "
                    "reason, created_at) VALUES(?,?,?,?,?,?,?)");
    q.bind(1, c.modelId).bind(2, c.baseGeneration).bind(3, c.strategy).bindJson(4, json(ids)).bindJson(5, c.validation);
    q.bind(6, c.reason).bind(7, c.createdAt > 0 ? c.createdAt : at).run();
    db::Statement change(*db_, "marking an update discarded",
                         "UPDATE updates SET status = 'discarded', reason = ?1 "
                         "WHERE id = ?3 AND model_id = ?4 AND status = 'queued'");
    change.bind(1, c.reason);
    settleUpdates(*db_, c.modelId, ids, change);
  });
}

}  // namespace tessera::server
