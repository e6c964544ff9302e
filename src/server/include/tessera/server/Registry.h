#pragma once
// The server's registry in SQLite (DATA/registry.sqlite3; WAL, synchronous=FULL, foreign keys):
// sites and token hashes, models and their policies, generations with lineage, updates and
// their state, usage events. Each change that touches several rows is one transaction, so a
// crash leaves either all of it or none. One connection behind a mutex: safe to call from many
// HTTP threads; other processes (the admin CLI) may use the same file at the same time.
// Failures are Error with the API's codes (not_found, conflict, bad_request, corrupt, io).

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "tessera/common/Ed25519.h"

namespace tessera::server {

class BlobStore;
struct HighWaterMark;  // tessera/server/HighWater.h
namespace db {
class Connection;
}

struct Site {
  int64_t id = 0;
  std::string name;
  std::string role;  // "site" or "admin"
  double createdAt = 0;
};

struct ModelRecord {
  int64_t id = 0;
  std::string task, modality, anatomy, disease;
  nlohmann::json header;  // spec, preprocessing, task
  nlohmann::json policy;
  double createdAt = 0;
  std::optional<int64_t> latestGeneration;  // highest published generation
};

struct GenerationRecord {
  int64_t modelId = 0;
  int64_t generation = 0;
  std::optional<int64_t> parent;
  std::string weightsSha256;
  int64_t weightsBytes = 0;
  int64_t parameters = 0;
  std::string strategy;
  std::vector<int64_t> mergedUpdates;
  nlohmann::json validation;  // null when not scored
  double createdAt = 0;       // 0 when writing: "now"
  // The server key's Ed25519 signature (hex) of common::generationSignatureMessage (task,
  // generation, parent, weights SHA-256). Made by the registry when it stores the generation;
  // what a caller sets is ignored.
  std::string signature;
};

struct RejectedCandidate {
  int64_t id = 0;
  int64_t modelId = 0;
  int64_t baseGeneration = 0;
  std::string strategy;
  std::vector<int64_t> updateIds;
  nlohmann::json validation;
  std::string reason;
  double createdAt = 0;  // 0 when writing: "now"
};

struct UpdateRecord {
  int64_t id = 0;
  int64_t modelId = 0;
  int64_t siteId = 0;
  std::string siteName;
  int64_t baseGeneration = 0;
  std::string kind;  // delta, weights
  double samples = 0;
  nlohmann::json metrics;
  std::string blobSha256;
  int64_t weightsOffset = 0;  // where the weights section starts inside the blob
  int64_t weightsBytes = 0;
  std::optional<double> deltaNorm;
  std::string status;  // queued, merged, discarded
  std::optional<int64_t> mergedInto;
  std::string reason;  // why it was discarded
  double receivedAt = 0;
  std::optional<double> mergedAt;
};

struct NewUpdate {
  int64_t modelId = 0;
  int64_t siteId = 0;
  int64_t baseGeneration = 0;
  std::string kind;  // delta, weights
  double samples = 0;
  nlohmann::json metrics;
  std::string blobSha256;
  int64_t weightsOffset = 0;
  int64_t weightsBytes = 0;
  std::optional<double> deltaNorm;
  std::string idempotencyKey;  // from the update's header; empty: none
  std::optional<double> dpNoiseMultiplier;  // the z it was released with under DP; none: no DP
};

// One DP release of a site's update, as the privacy ledger composes them.
struct PrivacyStep {
  int64_t siteId = 0;
  std::string siteName;
  double noiseMultiplier = 0;
};

// What queueUpdate did with an upload.
struct QueuedUpdate {
  int64_t id = 0;
  bool duplicate = false;  // true: the site had sent this update before; `id` is the first one's
  std::string status;      // the update's status (queued, merged, discarded)
};

struct UsageEvent {
  std::string type;  // predict, correct, train, push
  std::string task;
  std::optional<double> seconds;
  std::optional<double> dice;
};

struct ModelFilter {
  std::string task, modality, anatomy, disease;  // empty: any; otherwise case-insensitive equality
};

class Registry {
 public:
  // Opens or creates dataDir/registry.sqlite3 (and dataDir). Error(ErrorCode::Io, "<path>: …").
  explicit Registry(const std::filesystem::path& dataDir);
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Returns the site and its token, the only time the token exists in clear: only its SHA-256
  // is stored. Names are [A-Za-z0-9._-]{1,64}, roles "site" or "admin" (bad_request otherwise);
  // "conflict" if the name is taken.
  std::pair<Site, std::string> addSite(const std::string& name, const std::string& role);
  // A new token for an existing site; the old one stops working. "not_found" for unknown names.
  std::string rotateToken(const std::string& name);
  std::optional<Site> siteForToken(const std::string& token) const;
  std::vector<Site> sites() const;
  // Integrity (RegistrySecurity.cpp). A site's Ed25519 public key (normalised hex; empty clears
  // it): once set, every upload of the site must carry a valid signature. "not_found" for
  // unknown names.
  void setSitePublicKey(const std::string& name, const std::string& publicKeyHex);
  std::optional<std::string> sitePublicKey(int64_t siteId) const;
  // The site's token stops working at once (the next request gets 401); rotateToken gives it a
  // new one and reinstates it. "not_found" for unknown names.
  void revokeSite(const std::string& name);
  // A signed upload's nonce, once per site: true the first time, false when it was seen before.
  bool claimNonce(int64_t siteId, const std::string& nonce);
  bool nonceSeen(int64_t siteId, const std::string& nonce) const;
  // The public half of DATA/server-key, which signs every generation (created on first use).
  std::string serverPublicKey() const;
  // One line per generation whose signature does not verify with DATA/server-key (a row or blob
  // changed by someone without the key); creates no key.
  std::vector<std::string> checkSignatures() const;

  // One transaction: the model and its first generation (firstGeneration.modelId is ignored).
  // "conflict" if the task exists.
  ModelRecord addModel(const std::string& task, const std::string& modality, const std::string& anatomy,
                       const std::string& disease, const nlohmann::json& header, const nlohmann::json& policy,
                       const GenerationRecord& firstGeneration);
  std::optional<ModelRecord> model(const std::string& task) const;
  std::optional<ModelRecord> modelById(int64_t id) const;
  std::vector<ModelRecord> models(const ModelFilter& filter) const;  // ordered by id
  void setPolicy(int64_t modelId, const nlohmann::json& policy);

  std::optional<GenerationRecord> generation(int64_t modelId, int64_t generation) const;
  std::optional<GenerationRecord> latestGeneration(int64_t modelId) const;
  std::vector<GenerationRecord> generations(int64_t modelId) const;  // oldest first
  std::vector<RejectedCandidate> rejectedCandidates(int64_t modelId) const;
  // THE crash-safety point. One transaction: the generation row and every listed update marked
  // merged into it. Throws Error("conflict"), changing nothing, if the generation exists
  // or an update is not queued for this model. g.mergedUpdates, when given, must equal updateIds.
  void publishGeneration(const GenerationRecord& g, const std::vector<int64_t>& updateIds);
  // One transaction: the rejected candidate and its updates marked discarded with the reason;
  // "conflict", changing nothing, if an update is not queued for this model.
  void rejectCandidate(const RejectedCandidate& c, const std::vector<int64_t>& updateIds);

  // Queued, received now; returns the new id. "not_found" for an unknown model or site.
  int64_t addUpdate(const NewUpdate& u);
  // The server's way in, one transaction: an update from the same site for the same model with
  // the same idempotency key or the same blob (the same bytes) is that update again (its id,
  // duplicate, nothing stored); otherwise "conflict" when the site already has
  // `maxQueuedPerSite` updates queued for the model; otherwise queued like addUpdate.
  // `admit`, when given, runs inside the same transaction just before the update is stored, with
  // the site's earlier DP releases for the model; it throws to refuse (the privacy budget).
  QueuedUpdate queueUpdate(const NewUpdate& u, int maxQueuedPerSite,
                           const std::function<void(const std::vector<PrivacyStep>&)>& admit = {});
  // Every DP release for the model (all statuses: a queued or discarded update was seen by the
  // server all the same), or only one site's (siteId > 0), by update id.
  std::vector<PrivacyStep> privacySteps(int64_t modelId, int64_t siteId = 0) const;
  // The update `siteId` sent for `modelId` with this idempotency key (when the key is not
  // empty) or else with this blob, if any: what queueUpdate would answer as a duplicate.
  std::optional<UpdateRecord> sameUpdate(int64_t modelId, int64_t siteId, const std::string& idempotencyKey,
                                         const std::string& blobSha256) const;
  int64_t queuedFrom(int64_t modelId, int64_t siteId) const;  // a site's queued updates for a model
  std::optional<UpdateRecord> update(int64_t id) const;
  std::vector<UpdateRecord> updates(int64_t modelId, const std::string& status) const;  // "" = all; by id
  std::vector<UpdateRecord> queuedUpdates(int64_t modelId) const;
  int64_t queuedCount() const;  // over all models

  void addEvents(int64_t siteId, const std::vector<UsageEvent>& events);  // one transaction
  // addEvents under a quota of `maxEvents` per site in any `windowSeconds`: when the site's
  // events of the last window plus these would be over it, nothing is stored and the answer is
  // the number of seconds until they fit (> 0); 0 when stored. One transaction.
  double addEventsWithin(int64_t siteId, const std::vector<UsageEvent>& events, int64_t maxEvents, double windowSeconds);
  // {"events":[{"type","task","site","count","mean_seconds","mean_dice"}],
  //  "models":[{"task","generations","rejected_candidates","updates":{"queued","merged","discarded"}}],
  //  "sites": number of sites with role "site"}. Means are null where no event had a value.
  nlohmann::json usageStats() const;

  // After a crash: the database file is sound, every merged update points at an existing
  // generation that lists it, every generation's weights and every queued update's blob exist,
  // and every generation after a model's first has its parent. Returns the problems found
  // (empty: consistent).
  std::vector<std::string> checkConsistency(const BlobStore& blobs) const;

  // What the registry itself holds: the highest update id, each task's latest generation
  // (compared with DATA/highwater.json at start; see HighWater.h).
  HighWaterMark highWater() const;
  // A consistent copy of the whole database into the new file `file` (SQLite's online backup),
  // while other connections keep writing. See Backup.h for a whole data folder.
  void backupTo(const std::filesystem::path& file) const;
  // Every blob a row names: generations' weights and updates' files (queued, merged or
  // discarded). Anything else under blobs/ is an orphan once it is older than any write in flight.
  std::set<std::string> referencedBlobs() const;

 private:
  // The server key's signature of generation `g` of `task`.
  std::string signGeneration(const std::string& task, const GenerationRecord& g) const;
  // Generations stored before signatures existed are signed when the registry is opened.
  void signUnsignedGenerations();

  std::unique_ptr<db::Connection> db_;
  mutable std::mutex mutex_;
  std::filesystem::path dataDir_;
  mutable std::mutex keyMutex_;
  mutable std::shared_ptr<const common::SigningKey> serverKey_;
};

}  // namespace tessera::server
