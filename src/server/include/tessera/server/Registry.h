#pragma once
// The server's registry in SQLite (WAL, synchronous=FULL): sites and token hashes, models and
// their policies, generations with lineage, updates and their state, usage events. Each change
// that touches several rows is one transaction, so a crash leaves either all of it or none.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace tessera::server {

class BlobStore;

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
  double createdAt = 0;
};

struct RejectedCandidate {
  int64_t id = 0;
  int64_t modelId = 0;
  int64_t baseGeneration = 0;
  std::string strategy;
  std::vector<int64_t> updateIds;
  nlohmann::json validation;
  std::string reason;
  double createdAt = 0;
};

struct UpdateRecord {
  int64_t id = 0;
  int64_t modelId = 0;
  int64_t siteId = 0;
  std::string siteName;
  int64_t baseGeneration = 0;
  std::string kind;
  double samples = 0;
  nlohmann::json metrics;
  std::string blobSha256;
  int64_t weightsOffset = 0;
  int64_t weightsBytes = 0;
  std::optional<double> deltaNorm;
  std::string status;  // queued, merged, discarded
  std::optional<int64_t> mergedInto;
  std::string reason;
  double receivedAt = 0;
  std::optional<double> mergedAt;
};

struct NewUpdate {
  int64_t modelId = 0;
  int64_t siteId = 0;
  int64_t baseGeneration = 0;
  std::string kind;
  double samples = 0;
  nlohmann::json metrics;
  std::string blobSha256;
  int64_t weightsOffset = 0;
  int64_t weightsBytes = 0;
  std::optional<double> deltaNorm;
};

struct UsageEvent {
  std::string type;
  std::string task;
  std::optional<double> seconds;
  std::optional<double> dice;
};

struct ModelFilter {
  std::string task, modality, anatomy, disease;  // empty: any; otherwise case-insensitive equality
};

class Registry {
 public:
  explicit Registry(const std::filesystem::path& dataDir);  // DATA/registry.sqlite3
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Returns the site and its token; the token is not stored, only its SHA-256.
  std::pair<Site, std::string> addSite(const std::string& name, const std::string& role);
  std::optional<Site> siteForToken(const std::string& token) const;
  std::vector<Site> sites() const;

  ModelRecord addModel(const std::string& task, const std::string& modality, const std::string& anatomy,
                       const std::string& disease, const nlohmann::json& header, const nlohmann::json& policy,
                       const GenerationRecord& firstGeneration);
  std::optional<ModelRecord> model(const std::string& task) const;
  std::optional<ModelRecord> modelById(int64_t id) const;
  std::vector<ModelRecord> models(const ModelFilter& filter) const;
  void setPolicy(int64_t modelId, const nlohmann::json& policy);

  std::optional<GenerationRecord> generation(int64_t modelId, int64_t generation) const;
  std::optional<GenerationRecord> latestGeneration(int64_t modelId) const;
  std::vector<GenerationRecord> generations(int64_t modelId) const;
  std::vector<RejectedCandidate> rejectedCandidates(int64_t modelId) const;
  // One transaction: the generation row and every listed update marked merged into it. Throws
  // StorageError("conflict"), changing nothing, if the generation exists or an update is not queued.
  void publishGeneration(const GenerationRecord& g, const std::vector<int64_t>& updateIds);
  // One transaction: the rejected candidate and its updates marked discarded with the reason.
  void rejectCandidate(const RejectedCandidate& c, const std::vector<int64_t>& updateIds);

  int64_t addUpdate(const NewUpdate& u);
  std::optional<UpdateRecord> update(int64_t id) const;
  std::vector<UpdateRecord> updates(int64_t modelId, const std::string& status) const;  // "" = all
  std::vector<UpdateRecord> queuedUpdates(int64_t modelId) const;
  int64_t queuedCount() const;

  void addEvents(int64_t siteId, const std::vector<UsageEvent>& events);
  nlohmann::json usageStats() const;

  // After a crash: every merged update points at an existing generation and every blob the
  // registry names exists. Returns the problems found (empty: consistent).
  std::vector<std::string> checkConsistency(const BlobStore& blobs) const;

 private:
  struct Db;
  std::unique_ptr<Db> db_;
  mutable std::mutex mutex_;
};

}  // namespace tessera::server
