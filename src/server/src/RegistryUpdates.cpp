// Registry: the update queue. Updates arrive queued and leave it only through
// publishGeneration or rejectCandidate (RegistryModels.cpp).
#include <cmath>
#include <optional>

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
  if (u.idempotencyKey.size() > 128) bad("idempotency_key is over 128 characters");
  if (u.dpNoiseMultiplier && !(*u.dpNoiseMultiplier >= 0 && std::isfinite(*u.dpNoiseMultiplier)))
    bad("dp_noise_multiplier is not a finite number >= 0");
}

void insertUpdate(db::Connection& db, const NewUpdate& u) {
  try {
    db::Statement q(db, "queueing an update",
                    "INSERT INTO updates(model_id, site_id, base_generation, kind, samples, metrics_json, blob_sha256, "
                    "weights_offset, weights_bytes, delta_norm, status, received_at, idempotency_key, dp_noise_multiplier) "
                    "VALUES(?,?,?,?,?,?,?,?,?,?,'queued',?,?,?)");
    q.bind(1, u.modelId).bind(2, u.siteId).bind(3, u.baseGeneration).bind(4, u.kind).bind(5, u.samples);
    q.bindJson(6, u.metrics.is_null() ? nlohmann::json::object() : u.metrics).bind(7, u.blobSha256);
    q.bind(8, u.weightsOffset).bind(9, u.weightsBytes).bind(10, u.deltaNorm).bind(11, rows::now());
    if (u.idempotencyKey.empty()) q.bindNull(12);
    else q.bind(12, u.idempotencyKey);
    q.bind(13, u.dpNoiseMultiplier);
    q.run();
  } catch (const Error& e) {
    if (e.code() != ErrorCode::NotFound) throw;
    throw Error(ErrorCode::NotFound, "update for model " + std::to_string(u.modelId) + " from site " +
                                        std::to_string(u.siteId) + ": no such model or site");
  }
}

// The caller holds the mutex (and, for queueUpdate, the transaction).
std::optional<UpdateRecord> findSame(db::Connection& db, int64_t modelId, int64_t siteId, const std::string& key,
                                     const std::string& blobSha256) {
  if (!key.empty()) {
    db::Statement q(db, "finding an update by its idempotency key",
                    (rows::kUpdateSelect + "WHERE u.model_id = ? AND u.site_id = ? AND u.idempotency_key = ?").c_str());
    q.bind(1, modelId).bind(2, siteId).bind(3, key);
    if (q.step()) return rows::readUpdate(q);
  }
  if (blobSha256.empty()) return std::nullopt;
  db::Statement q(db, "finding an update by its bytes",
                  (rows::kUpdateSelect + "WHERE u.model_id = ? AND u.site_id = ? AND u.blob_sha256 = ? ORDER BY u.id LIMIT 1").c_str());
  q.bind(1, modelId).bind(2, siteId).bind(3, blobSha256);
  if (q.step()) return rows::readUpdate(q);
  return std::nullopt;
}

std::vector<PrivacyStep> readPrivacySteps(db::Connection& db, int64_t modelId, int64_t siteId) {
  db::Statement q(db, "reading the privacy ledger",
                  "SELECT u.site_id, s.name, u.dp_noise_multiplier FROM updates u LEFT JOIN sites s ON s.id = u.site_id "
                  "WHERE u.model_id = ?1 AND (?2 = 0 OR u.site_id = ?2) AND u.dp_noise_multiplier IS NOT NULL ORDER BY u.id");
  q.bind(1, modelId).bind(2, siteId);
  std::vector<PrivacyStep> out;
  while (q.step()) out.push_back({q.integer(0), q.text(1), q.real(2)});
  return out;
}

int64_t countQueued(db::Connection& db, int64_t modelId, int64_t siteId) {
  db::Statement q(db, "counting a site's queued updates",
                  "SELECT count(*) FROM updates WHERE model_id = ? AND site_id = ? AND status = 'queued'");
  q.bind(1, modelId).bind(2, siteId);
  q.step();
  return q.integer(0);
}

}  // namespace

int64_t Registry::addUpdate(const NewUpdate& u) {
  validate(u);
  std::lock_guard lock(mutex_);
  insertUpdate(*db_, u);
  return db_->lastInsertId();
}

QueuedUpdate Registry::queueUpdate(const NewUpdate& u, int maxQueuedPerSite,
                                   const std::function<void(const std::vector<PrivacyStep>&)>& admit) {
  validate(u);
  std::lock_guard lock(mutex_);
  return db_->transaction([&] {
    if (const auto same = findSame(*db_, u.modelId, u.siteId, u.idempotencyKey, u.blobSha256)) {
      return QueuedUpdate{same->id, true, same->status};
    }
    const int64_t queued = countQueued(*db_, u.modelId, u.siteId);
    if (queued >= maxQueuedPerSite) {
      throw Error(ErrorCode::Conflict, "this site already has " + std::to_string(queued) + " update" + (queued == 1 ? "" : "s") +
                                           " queued for this model and the policy allows " +
                                           std::to_string(maxQueuedPerSite) +
                                           " per round ('updates_per_site_per_round'); wait until the round is merged");
    }
    if (admit) admit(readPrivacySteps(*db_, u.modelId, u.siteId));
    insertUpdate(*db_, u);
    return QueuedUpdate{db_->lastInsertId(), false, "queued"};
  });
}

std::vector<PrivacyStep> Registry::privacySteps(int64_t modelId, int64_t siteId) const {
  std::lock_guard lock(mutex_);
  return readPrivacySteps(*db_, modelId, siteId);
}

std::optional<UpdateRecord> Registry::sameUpdate(int64_t modelId, int64_t siteId, const std::string& idempotencyKey,
                                                 const std::string& blobSha256) const {
  std::lock_guard lock(mutex_);
  return findSame(*db_, modelId, siteId, idempotencyKey, blobSha256);
}

int64_t Registry::queuedFrom(int64_t modelId, int64_t siteId) const {
  std::lock_guard lock(mutex_);
  return countQueued(*db_, modelId, siteId);
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
