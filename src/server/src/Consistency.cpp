// Registry::checkConsistency: what an operator runs after a crash or a restore from backup.
// Transactions make partial rounds impossible in SQLite itself; this looks for the damage they
// cannot prevent: a damaged file, blobs lost outside the database, hand edits.
#include <map>
#include <set>

#include "Database.h"
#include "Rows.h"
#include "tessera/server/BlobStore.h"
#include "tessera/server/Registry.h"
#include "tessera/common/Error.h"

namespace tessera::server {

namespace {

using Problems = std::vector<std::string>;

std::string generationName(int64_t modelId, int64_t generation) {
  return "model " + std::to_string(modelId) + " generation " + std::to_string(generation);
}

void checkFile(db::Connection& c, Problems& out) {
  db::Statement quick(c, "checking the database file", "PRAGMA quick_check");
  while (quick.step()) {
    if (quick.text(0) != "ok") out.push_back("registry file: " + quick.text(0));
  }
  db::Statement keys(c, "checking foreign keys", "PRAGMA foreign_key_check");
  while (keys.step()) {
    out.push_back("registry: " + keys.text(0) + " row " + keys.text(1) + " refers to a missing " + keys.text(2) + " row");
  }
}

void checkMergedUpdates(db::Connection& c, Problems& out) {
  db::Statement q(c, "checking merged updates",
                  "SELECT u.id, u.model_id, u.merged_into FROM updates u WHERE u.status = 'merged' AND (u.merged_into IS NULL "
                  "OR NOT EXISTS (SELECT 1 FROM generations g WHERE g.model_id = u.model_id AND g.generation = u.merged_into))");
  while (q.step()) {
    out.push_back("update " + std::to_string(q.integer(0)) + " is marked merged into " +
                  (q.isNull(2) ? std::string("no generation") : "missing " + generationName(q.integer(1), q.integer(2))));
  }
}

// Each generation's merged_updates must be exactly the updates marked merged into it.
void checkGenerations(db::Connection& c, const BlobStore& blobs, Problems& out) {
  std::map<int64_t, int64_t> firstGeneration;
  {
    db::Statement q(c, "finding first generations", "SELECT model_id, min(generation) FROM generations GROUP BY model_id");
    while (q.step()) firstGeneration[q.integer(0)] = q.integer(1);
  }
  std::vector<GenerationRecord> all;
  {
    db::Statement q(c, "reading generations", (rows::kGenerationSelect + "ORDER BY g.model_id, g.generation").c_str());
    while (q.step()) {
      try {
        all.push_back(rows::readGeneration(q));
      } catch (const Error& e) {
        out.push_back(e.what());
      }
    }
  }
  db::Statement update(c, "checking a generation's updates", "SELECT status, model_id, merged_into FROM updates WHERE id = ?");
  db::Statement parent(c, "checking a parent generation", "SELECT 1 FROM generations WHERE model_id = ? AND generation = ?");
  for (const auto& g : all) {
    const std::string name = generationName(g.modelId, g.generation);
    if (!isSha256Hex(g.weightsSha256)) {
      out.push_back(name + ": weights_sha256 '" + g.weightsSha256 + "' is not a SHA-256");
    } else if (!blobs.contains(g.weightsSha256)) {
      out.push_back(name + ": weights blob " + g.weightsSha256 + " is missing");
    }
    // A model's first generation may descend from one trained elsewhere, so only later ones
    // must find their parent here.
    if (g.parent && g.generation != firstGeneration[g.modelId]) {
      parent.reset().bind(1, g.modelId).bind(2, *g.parent);
      if (!parent.step()) out.push_back(name + ": parent generation " + std::to_string(*g.parent) + " is missing");
    }
    for (const int64_t id : g.mergedUpdates) {
      update.reset().bind(1, id);
      if (!update.step()) {
        out.push_back(name + ": lists update " + std::to_string(id) + ", which does not exist");
      } else if (update.text(0) != "merged" || update.integer(1) != g.modelId || update.optionalInteger(2) != g.generation) {
        out.push_back(name + ": lists update " + std::to_string(id) + ", which is not marked merged into it");
      }
    }
  }
}

// Queued updates are still to be merged, so their blobs must be there.
void checkQueuedBlobs(db::Connection& c, const BlobStore& blobs, Problems& out) {
  db::Statement q(c, "checking queued update blobs", "SELECT id, blob_sha256 FROM updates WHERE status = 'queued' ORDER BY id");
  while (q.step()) {
    const std::string sha = q.text(1);
    if (!isSha256Hex(sha) || !blobs.contains(sha)) {
      out.push_back("update " + std::to_string(q.integer(0)) + ": blob " + sha + " is missing");
    }
  }
}

}  // namespace

std::vector<std::string> Registry::checkConsistency(const BlobStore& blobs) const {
  std::lock_guard lock(mutex_);
  return db_->snapshot([&] {
    Problems problems;
    checkFile(*db_, problems);
    checkMergedUpdates(*db_, problems);
    checkGenerations(*db_, blobs, problems);
    checkQueuedBlobs(*db_, blobs, problems);
    return problems;
  });
}

std::set<std::string> Registry::referencedBlobs() const {
  std::lock_guard lock(mutex_);
  return db_->snapshot([&] {
    std::set<std::string> out;
    db::Statement q(*db_, "listing referenced blobs",
                    "SELECT weights_sha256 FROM generations UNION SELECT blob_sha256 FROM updates");
    while (q.step()) out.insert(q.text(0));
    return out;
  });
}

}  // namespace tessera::server
