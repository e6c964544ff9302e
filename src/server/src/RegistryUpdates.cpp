// Registry: the update queue. Updates arrive queued and leave it only through
// publishGeneration or rejectCandidate (RegistryModels.cpp).
#include <cmath>

#include "Database.h"
#include "Rows.h"
#include "tessera/server/BlobStore.h"
#include "tessera/server/Registry.h"
#include "tessera/common/Error.h"

namespace tessera::server {

namespace {

void validate(const NewUpdate& u) {
  auto bad = [](const std::string& why) { throw Error(ErrorCode::BadRequest, "update " + why); };
  if (u.kind != "delta" && u.kind != "weights") bad("kind '" + u.kind.substr(0, 80) + "' is neither 'delta' nor 'weights'");
  if (!std::isfinite(u.samples) || u.samples < 0) bad("samples " + std::to_string(u.samples) + " is not a count >= 0");
  if (!isSha256Hex(u.blobSha256)) bad("blob_sha256 '" + u.blobSha256.substr(0, 80) + "' is not a SHA-256");
  if (u.weightsOffset < 0) bad("weights_offset " + std::to_string(u.weightsOffset) + " is negative");
  if (u.weightsBytes < 0) bad("weights_bytes " + std::to_string(u.weightsBytes) + " is negative");
  // SQLite would store NaN as NULL, silently turning "unmeasurable" into "not measured".
  if (u.deltaNorm && !std::isfinite(*u.deltaNorm)) bad("delta_norm is not finite");
}

}  // namespace

int64_t Registry::addUpdate(const NewUpdate& u) {
  validate(u);
  std::lock_guard lock(mutex_);
  try {
    db::Statement q(*db_, "queueing an update",
                    "INSERT INTO updates(model_id, site_id, base_generation, kind, samples, metrics_json, blob_sha256, "
                    "weights_offset, weights_bytes, delta_norm, status, received_at) VALUES(?,?,?,?,?,?,?,?,?,?,'queued',?)");
    q.bind(1, u.modelId).bind(2, u.siteId).bind(3, u.baseGeneration).bind(4, u.kind).bind(5, u.samples);
    q.bindJson(6, u.metrics.is_null() ? nlohmann::json::object() : u.metrics).bind(7, u.blobSha256);
    q.bind(8, u.weightsOffset).bind(9, u.weightsBytes).bind(10, u.deltaNorm).bind(11, rows::now()).run();
  } catch (const Error& e) {
    if (e.code() != ErrorCode::NotFound) throw;
    throw Error(ErrorCode::NotFound, "update for model " + std::to_string(u.modelId) + " from site " +
                                        std::to_string(u.siteId) + ": no such model or site");
  }
  return db_->lastInsertId();
}

std::optional<UpdateRecord> Registry::update(int64_t id) const {
  std::lock_guard lock(mutex_);
  db::Statement q(*db_, "finding an update", (rows::kUpdateSelect + "WHERE u.id = ?").c_str());
  q.bind(1, id);
  if (!q.step()) return std::nullopt;
  return rows::readUpdate(q);
}

std::vector<UpdateRecord> Registry::updates(int64_t modelId, const std::string& status) const {
  if (!status.empty() && status != "queued" && status != "merged" && status != "discarded") {
    throw Error(ErrorCode::BadRequest, "status '" + status.substr(0, 80) + "' is not one of queued, merged, discarded");
  }
  std::lock_guard lock(mutex_);
  db::Statement q(*db_, "listing updates",
                  (rows::kUpdateSelect + "WHERE u.model_id = ?1 AND (?2 = '' OR u.status = ?2) ORDER BY u.id").c_str());
  q.bind(1, modelId).bind(2, status);
  std::vector<UpdateRecord> out;
  while (q.step()) out.push_back(rows::readUpdate(q));
  return out;
}

std::vector<UpdateRecord> Registry::queuedUpdates(int64_t modelId) const { return updates(modelId, "queued"); }

int64_t Registry::queuedCount() const {
  std::lock_guard lock(mutex_);
  db::Statement q(*db_, "counting queued updates", "SELECT count(*) FROM updates WHERE status = 'queued'");
  q.step();
  return q.integer(0);
}

}  // namespace tessera::server
