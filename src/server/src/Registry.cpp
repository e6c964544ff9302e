#include "tessera/server/Registry.h"

#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <fstream>
#include <random>

#include "tessera/common/Sha256.h"
#include "tessera/server/BlobStore.h"
#include "tessera/server/StorageError.h"

namespace tessera::server {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS sites(
  id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL,
  role TEXT NOT NULL CHECK(role IN ('site','admin')), token_sha256 TEXT UNIQUE NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS models(
  id INTEGER PRIMARY KEY, task TEXT UNIQUE NOT NULL, modality TEXT, anatomy TEXT, disease TEXT,
  header_json TEXT NOT NULL, policy_json TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS generations(
  model_id INTEGER NOT NULL REFERENCES models(id), generation INTEGER NOT NULL, parent INTEGER,
  weights_sha256 TEXT NOT NULL, weights_bytes INTEGER NOT NULL, parameters INTEGER NOT NULL, strategy TEXT NOT NULL,
  merged_updates_json TEXT NOT NULL DEFAULT '[]', validation_json TEXT, created_at REAL NOT NULL,
  PRIMARY KEY(model_id, generation));
CREATE TABLE IF NOT EXISTS rejected_candidates(
  id INTEGER PRIMARY KEY, model_id INTEGER NOT NULL REFERENCES models(id), base_generation INTEGER NOT NULL,
  strategy TEXT NOT NULL, update_ids_json TEXT NOT NULL, validation_json TEXT, reason TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS updates(
  id INTEGER PRIMARY KEY, model_id INTEGER NOT NULL REFERENCES models(id), site_id INTEGER NOT NULL REFERENCES sites(id),
  base_generation INTEGER NOT NULL, kind TEXT NOT NULL, samples REAL NOT NULL, metrics_json TEXT NOT NULL,
  blob_sha256 TEXT NOT NULL, weights_offset INTEGER NOT NULL, weights_bytes INTEGER NOT NULL, delta_norm REAL,
  status TEXT NOT NULL CHECK(status IN ('queued','merged','discarded')), merged_into INTEGER, reason TEXT NOT NULL DEFAULT '',
  received_at REAL NOT NULL, merged_at REAL);
CREATE INDEX IF NOT EXISTS updates_by_status ON updates(model_id, status);
CREATE TABLE IF NOT EXISTS events(
  id INTEGER PRIMARY KEY, site_id INTEGER NOT NULL REFERENCES sites(id), task TEXT NOT NULL, type TEXT NOT NULL,
  seconds REAL, dice REAL, at REAL NOT NULL);
PRAGMA user_version = 1;
)sql";

double now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string newToken() {
  unsigned char bytes[32];
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  if (!urandom.read(reinterpret_cast<char*>(bytes), sizeof bytes)) {
    std::random_device rd;
    for (auto& b : bytes) b = static_cast<unsigned char>(rd());
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token = "tsk_";
  for (unsigned char b : bytes) {
    token += kHex[b >> 4];
    token += kHex[b & 15];
  }
  return token;
}

class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) fail("prepare");
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement& bind(int i, int64_t v) { return check(sqlite3_bind_int64(stmt_, i, v)); }
  Statement& bind(int i, double v) { return check(sqlite3_bind_double(stmt_, i, v)); }
  Statement& bind(int i, const std::string& v) {
    return check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  Statement& bindNull(int i) { return check(sqlite3_bind_null(stmt_, i)); }
  template <typename T>
  Statement& bind(int i, const std::optional<T>& v) {
    return v ? bind(i, *v) : bindNull(i);
  }
  // True while a row is available.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    if (rc == SQLITE_CONSTRAINT) throw StorageError("conflict", std::string("constraint: ") + sqlite3_errmsg(db_));
    fail("step");
  }
  int64_t integer(int c) const { return sqlite3_column_int64(stmt_, c); }
  double real(int c) const { return sqlite3_column_double(stmt_, c); }
  bool isNull(int c) const { return sqlite3_column_type(stmt_, c) == SQLITE_NULL; }
  std::string text(int c) const {
    const auto* p = sqlite3_column_text(stmt_, c);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt_, c))) : std::string();
  }
  json jsonColumn(int c) const { return isNull(c) ? json(nullptr) : json::parse(text(c)); }

 private:
  Statement& check(int rc) {
    if (rc != SQLITE_OK) fail("bind");
    return *this;
  }
  [[noreturn]] void fail(const char* what) const {
    throw StorageError("io", std::string("registry ") + what + " failed: " + sqlite3_errmsg(db_) + " [" +
                                 (stmt_ ? sqlite3_sql(stmt_) : "") + "]");
  }
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

constexpr const char* kUpdateColumns =
    "u.id, u.model_id, u.site_id, s.name, u.base_generation, u.kind, u.samples, u.metrics_json, u.blob_sha256, "
    "u.weights_offset, u.weights_bytes, u.delta_norm, u.status, u.merged_into, u.reason, u.received_at, u.merged_at "
    "FROM updates u JOIN sites s ON s.id = u.site_id ";

UpdateRecord readUpdate(const Statement& q) {
  UpdateRecord u;
  u.id = q.integer(0);
  u.modelId = q.integer(1);
  u.siteId = q.integer(2);
  u.siteName = q.text(3);
  u.baseGeneration = q.integer(4);
  u.kind = q.text(5);
  u.samples = q.real(6);
  u.metrics = q.jsonColumn(7);
  u.blobSha256 = q.text(8);
  u.weightsOffset = q.integer(9);
  u.weightsBytes = q.integer(10);
  if (!q.isNull(11)) u.deltaNorm = q.real(11);
  u.status = q.text(12);
  if (!q.isNull(13)) u.mergedInto = q.integer(13);
  u.reason = q.text(14);
  u.receivedAt = q.real(15);
  if (!q.isNull(16)) u.mergedAt = q.real(16);
  return u;
}

constexpr const char* kGenerationColumns =
    "model_id, generation, parent, weights_sha256, weights_bytes, parameters, strategy, merged_updates_json, "
    "validation_json, created_at FROM generations ";

GenerationRecord readGeneration(const Statement& q) {
  GenerationRecord g;
  g.modelId = q.integer(0);
  g.generation = q.integer(1);
  if (!q.isNull(2)) g.parent = q.integer(2);
  g.weightsSha256 = q.text(3);
  g.weightsBytes = q.integer(4);
  g.parameters = q.integer(5);
  g.strategy = q.text(6);
  g.mergedUpdates = json::parse(q.text(7)).get<std::vector<int64_t>>();
  g.validation = q.jsonColumn(8);
  g.createdAt = q.real(9);
  return g;
}

constexpr const char* kModelColumns =
    "id, task, modality, anatomy, disease, header_json, policy_json, created_at FROM models ";

ModelRecord readModel(const Statement& q) {
  ModelRecord m;
  m.id = q.integer(0);
  m.task = q.text(1);
  m.modality = q.text(2);
  m.anatomy = q.text(3);
  m.disease = q.text(4);
  m.header = json::parse(q.text(5));
  m.policy = json::parse(q.text(6));
  m.createdAt = q.real(7);
  return m;
}

}  // namespace

struct Registry::Db {
  sqlite3* handle = nullptr;
  fs::path path;

  void exec(const char* sql) {
    char* error = nullptr;
    if (sqlite3_exec(handle, sql, nullptr, nullptr, &error) != SQLITE_OK) {
      const std::string message = error ? error : "unknown";
      sqlite3_free(error);
      throw StorageError("io", path.string() + ": " + message);
    }
  }

  // BEGIN IMMEDIATE … COMMIT around `body`; ROLLBACK on any exception.
  template <typename Body>
  auto transaction(Body&& body) {
    exec("BEGIN IMMEDIATE");
    try {
      if constexpr (std::is_void_v<decltype(body())>) {
        body();
        exec("COMMIT");
      } else {
        auto result = body();
        exec("COMMIT");
        return result;
      }
    } catch (...) {
      sqlite3_exec(handle, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }
};

Registry::Registry(const fs::path& dataDir) : db_(std::make_unique<Db>()) {
  std::error_code ec;
  fs::create_directories(dataDir, ec);
  db_->path = dataDir / "registry.sqlite3";
  if (sqlite3_open_v2(db_->path.c_str(), &db_->handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    const std::string message = db_->handle ? sqlite3_errmsg(db_->handle) : "out of memory";
    sqlite3_close(db_->handle);
    throw StorageError("io", db_->path.string() + ": cannot open: " + message);
  }
  sqlite3_busy_timeout(db_->handle, 5000);
  db_->exec("PRAGMA journal_mode=WAL");
  db_->exec("PRAGMA synchronous=FULL");
  db_->exec("PRAGMA foreign_keys=ON");
  db_->transaction([&] { db_->exec(kSchema); });
}

Registry::~Registry() {
  if (db_ && db_->handle) sqlite3_close(db_->handle);
}

std::pair<Site, std::string> Registry::addSite(const std::string& name, const std::string& role) {
  const bool validName = !name.empty() && name.size() <= 64 &&
                         std::all_of(name.begin(), name.end(), [](unsigned char c) {
                           return std::isalnum(c) || c == '.' || c == '_' || c == '-';
                         });
  if (!validName) throw StorageError("bad_request", "site name '" + name + "' must be 1-64 letters, digits, '.', '_' or '-'");
  if (role != "site" && role != "admin") throw StorageError("bad_request", "role '" + role + "' is neither 'site' nor 'admin'");
  std::lock_guard lock(mutex_);
  const std::string token = newToken();
  Site site{0, name, role, now()};
  try {
    Statement q(db_->handle, "INSERT INTO sites(name, role, token_sha256, created_at) VALUES(?,?,?,?)");
    q.bind(1, name).bind(2, role).bind(3, common::sha256Hex(token)).bind(4, site.createdAt).step();
  } catch (const StorageError& e) {
    if (e.code() == "conflict") throw StorageError("conflict", "a site named '" + name + "' already exists");
    throw;
  }
  site.id = sqlite3_last_insert_rowid(db_->handle);
  return {site, token};
}

std::optional<Site> Registry::siteForToken(const std::string& token) const {
  std::lock_guard lock(mutex_);
  Statement q(db_->handle, "SELECT id, name, role, created_at FROM sites WHERE token_sha256 = ?");
  q.bind(1, common::sha256Hex(token));
  if (!q.step()) return std::nullopt;
  return Site{q.integer(0), q.text(1), q.text(2), q.real(3)};
}

std::vector<Site> Registry::sites() const {
  std::lock_guard lock(mutex_);
  Statement q(db_->handle, "SELECT id, name, role, created_at FROM sites ORDER BY id");
  std::vector<Site> out;
  while (q.step()) out.push_back({q.integer(0), q.text(1), q.text(2), q.real(3)});
  return out;
}

ModelRecord Registry::addModel(const std::string& task, const std::string& modality, const std::string& anatomy,
                               const std::string& disease, const json& header, const json& policy,
                               const GenerationRecord& first) {
  std::lock_guard lock(mutex_);
  ModelRecord m{0, task, modality, anatomy, disease, header, policy, now()};
  db_->transaction([&] {
    try {
      Statement q(db_->handle,
                  "INSERT INTO models(task, modality, anatomy, disease, header_json, policy_json, created_at) VALUES(?,?,?,?,?,?,?)");
      q.bind(1, task).bind(2, modality).bind(3, anatomy).bind(4, disease).bind(5, header.dump()).bind(6, policy.dump());
      q.bind(7, m.createdAt).step();
    } catch (const StorageError& e) {
      if (e.code() == "conflict") throw StorageError("conflict", "a model for task '" + task + "' already exists");
      throw;
    }
    m.id = sqlite3_last_insert_rowid(db_->handle);
    Statement g(db_->handle,
                "INSERT INTO generations(model_id, generation, parent, weights_sha256, weights_bytes, parameters, strategy, "
                "merged_updates_json, validation_json, created_at) VALUES(?,?,?,?,?,?,?,?,?,?)");
    g.bind(1, m.id).bind(2, first.generation).bind(3, first.parent).bind(4, first.weightsSha256);
    g.bind(5, first.weightsBytes).bind(6, first.parameters).bind(7, first.strategy);
    g.bind(8, json(first.mergedUpdates).dump());
    if (first.validation.is_null()) g.bindNull(9);
    else g.bind(9, first.validation.dump());
    g.bind(10, m.createdAt).step();
  });
  return m;
}

std::optional<ModelRecord> Registry::model(const std::string& task) const {
  std::lock_guard lock(mutex_);
  Statement q(db_->handle, (std::string("SELECT ") + kModelColumns + "WHERE task = ?").c_str());
  q.bind(1, task);
  if (!q.step()) return std::nullopt;
  return readModel(q);
}

std::optional<ModelRecord> Registry::modelById(int64_t id) const {
  std::lock_guard lock(mutex_);
  Statement q(db_->handle, (std::string("SELECT ") + kModelColumns + "WHERE id = ?").c_str());
  q.bind(1, id);
  if (!q.step()) return std::nullopt;
  return readModel(q);
}

std::vector<ModelRecord> Registry::models(const ModelFilter& f) const {
  std::lock_guard lock(mutex_);
  Statement q(db_->handle, (std::string("SELECT ") + kModelColumns +
                            "WHERE (?1 = '' OR lower(task) = ?1) AND (?2 = '' OR lower(modality) = ?2) "
                            "AND (?3 = '' OR lower(anatomy) = ?3) AND (?4 = '' OR lower(disease) = ?4) ORDER BY id")
                               .c_str());
  q.bind(1, lower(f.task)).bind(2, lower(f.modality)).bind(3, lower(f.anatomy)).bind(4, lower(f.disease));
  std::vector<ModelRecord> out;
  while (q.step()) out.push_back(readModel(q));
  return out;
}

void Registry::setPolicy(int64_t modelId, const json& policy) {
  std::lock_guard lock(mutex_);
  Statement q(db_->handle, "UPDATE models SET policy_json = ? WHERE id = ?");
  q.bind(1, policy.dump()).bind(2, modelId).step();
}

std::optional<GenerationRecord> Registry::generation(int64_t modelId, int64_t generation) const {
  std::lock_guard lock(mutex_);
  Statement q(db_->handle, (std::string("SELECT ") + kGenerationColumns + "WHERE model_id = ? AND generation = ?").c_str());
  q.bind(1, modelId).bind(2, generation);
  if (!q.step()) return std::nullopt;
  return readGeneration(q);
}

std::optional<GenerationRecord> Registry::latestGeneration(int64_t modelId) const {
  std::lock_guard lock(mutex_);
  Statement q(db_->handle,
              (std::string("SELECT ") + kGenerationColumns + "WHERE model_id = ? ORDER BY generation DESC LIMIT 1").c_str());
  q.bind(1, modelId);
  if (!q.step()) return std::nullopt;
  return readGeneration(q);
}

std::vector<GenerationRecord> Registry::generations(int64_t modelId) const {
  std::lock_guard lock(mutex_);
  Statement q(db_->handle, (std::string("SELECT ") + kGenerationColumns + "WHERE model_id = ? ORDER BY generation").c_str());
  q.bind(1, modelId);
  std::vector<GenerationRecord> out;
  while (q.step()) out.push_back(readGeneration(q));
  return out;
}

std::vector<RejectedCandidate> Registry::rejectedCandidates(int64_t modelId) const {
  std::lock_guard lock(mutex_);
  Statement q(db_->handle,
              "SELECT id, model_id, base_generation, strategy, update_ids_json, validation_json, reason, created_at "
              "FROM rejected_candidates WHERE model_id = ? ORDER BY id");
  q.bind(1, modelId);
  std::vector<RejectedCandidate> out;
  while (q.step()) {
    out.push_back({q.integer(0), q.integer(1), q.integer(2), q.text(3), json::parse(q.text(4)).get<std::vector<int64_t>>(),
                   q.jsonColumn(5), q.text(6), q.real(7)});
  }
  return out;
}

void Registry::publishGeneration(const GenerationRecord& g, const std::vector<int64_t>& updateIds) {
  std::lock_guard lock(mutex_);
  const double at = now();
  db_->transaction([&] {
    try {
      Statement q(db_->handle,
                  "INSERT INTO generations(model_id, generation, parent, weights_sha256, weights_bytes, parameters, strategy, "
                  "merged_updates_json, validation_json, created_at) VALUES(?,?,?,?,?,?,?,?,?,?)");
      q.bind(1, g.modelId).bind(2, g.generation).bind(3, g.parent).bind(4, g.weightsSha256).bind(5, g.weightsBytes);
      q.bind(6, g.parameters).bind(7, g.strategy).bind(8, json(g.mergedUpdates).dump());
      if (g.validation.is_null()) q.bindNull(9);
      else q.bind(9, g.validation.dump());
      q.bind(10, at).step();
    } catch (const StorageError& e) {
      if (e.code() == "conflict") throw StorageError("conflict", "generation " + std::to_string(g.generation) + " already exists");
      throw;
    }
    for (int64_t id : updateIds) {
      Statement u(db_->handle,
                  "UPDATE updates SET status = 'merged', merged_into = ?, merged_at = ? WHERE id = ? AND status = 'queued' "
                  "AND model_id = ?");
      u.bind(1, g.generation).bind(2, at).bind(3, id).bind(4, g.modelId).step();
      if (sqlite3_changes(db_->handle) != 1) {
        throw StorageError("conflict", "update " + std::to_string(id) + " is not queued for this model");
      }
    }
  });
}

void Registry::rejectCandidate(const RejectedCandidate& c, const std::vector<int64_t>& updateIds) {
  std::lock_guard lock(mutex_);
  const double at = now();
  db_->transaction([&] {
    Statement q(db_->handle,
                "INSERT INTO rejected_candidates(model_id, base_generation, strategy, update_ids_json, validation_json, reason, "
                "created_at) VALUES(?,?,?,?,?,?,?)");
    q.bind(1, c.modelId).bind(2, c.baseGeneration).bind(3, c.strategy).bind(4, json(c.updateIds).dump());
    if (c.validation.is_null()) q.bindNull(5);
    else q.bind(5, c.validation.dump());
    q.bind(6, c.reason).bind(7, at).step();
    for (int64_t id : updateIds) {
      Statement u(db_->handle, "UPDATE updates SET status = 'discarded', reason = ?, merged_at = ? WHERE id = ? AND status = 'queued'");
      u.bind(1, c.reason).bind(2, at).bind(3, id).step();
      if (sqlite3_changes(db_->handle) != 1) throw StorageError("conflict", "update " + std::to_string(id) + " is not queued");
    }
  });
}

int64_t Registry::addUpdate(const NewUpdate& n) {
  std::lock_guard lock(mutex_);
  Statement q(db_->handle,
              "INSERT INTO updates(model_id, site_id, base_generation, kind, samples, metrics_json, blob_sha256, weights_offset, "
              "weights_bytes, delta_norm, status, received_at) VALUES(?,?,?,?,?,?,?,?,?,?,'queued',?)");
  q.bind(1, n.modelId).bind(2, n.siteId).bind(3, n.baseGeneration).bind(4, n.kind).bind(5, n.samples);
  q.bind(6, n.metrics.is_null() ? std::string("{}") : n.metrics.dump()).bind(7, n.blobSha256).bind(8, n.weightsOffset);
  q.bind(9, n.weightsBytes).bind(10, n.deltaNorm).bind(11, now()).step();
  return sqlite3_last_insert_rowid(db_->handle);
}

std::optional<UpdateRecord> Registry::update(int64_t id) const {
  std::lock_guard lock(mutex_);
  Statement q(db_->handle, (std::string("SELECT ") + kUpdateColumns + "WHERE u.id = ?").c_str());
  q.bind(1, id);
  if (!q.step()) return std::nullopt;
  return readUpdate(q);
}

std::vector<UpdateRecord> Registry::updates(int64_t modelId, const std::string& status) const {
  std::lock_guard lock(mutex_);
  Statement q(db_->handle,
              (std::string("SELECT ") + kUpdateColumns + "WHERE u.model_id = ? AND (? = '' OR u.status = ?) ORDER BY u.id").c_str());
  q.bind(1, modelId).bind(2, status).bind(3, status);
  std::vector<UpdateRecord> out;
  while (q.step()) out.push_back(readUpdate(q));
  return out;
}

std::vector<UpdateRecord> Registry::queuedUpdates(int64_t modelId) const { return updates(modelId, "queued"); }

int64_t Registry::queuedCount() const {
  std::lock_guard lock(mutex_);
  Statement q(db_->handle, "SELECT count(*) FROM updates WHERE status = 'queued'");
  q.step();
  return q.integer(0);
}

void Registry::addEvents(int64_t siteId, const std::vector<UsageEvent>& events) {
  std::lock_guard lock(mutex_);
  const double at = now();
  db_->transaction([&] {
    for (const auto& e : events) {
      Statement q(db_->handle, "INSERT INTO events(site_id, task, type, seconds, dice, at) VALUES(?,?,?,?,?,?)");
      q.bind(1, siteId).bind(2, e.task).bind(3, e.type).bind(4, e.seconds).bind(5, e.dice).bind(6, at).step();
    }
  });
}

json Registry::usageStats() const {
  std::lock_guard lock(mutex_);
  json events = json::array();
  {
    Statement q(db_->handle,
                "SELECT e.type, e.task, s.name, count(*), avg(e.seconds), avg(e.dice) FROM events e JOIN sites s ON s.id = e.site_id "
                "GROUP BY e.type, e.task, s.name ORDER BY e.type, e.task, s.name");
    while (q.step()) {
      events.push_back({{"type", q.text(0)}, {"task", q.text(1)}, {"site", q.text(2)}, {"count", q.integer(3)},
                        {"mean_seconds", q.isNull(4) ? json(nullptr) : json(q.real(4))},
                        {"mean_dice", q.isNull(5) ? json(nullptr) : json(q.real(5))}});
    }
  }
  json models = json::array();
  {
    Statement q(db_->handle,
                "SELECT m.task, (SELECT count(*) FROM generations g WHERE g.model_id = m.id), "
                "(SELECT count(*) FROM rejected_candidates r WHERE r.model_id = m.id), "
                "(SELECT count(*) FROM updates u WHERE u.model_id = m.id AND u.status = 'queued'), "
                "(SELECT count(*) FROM updates u WHERE u.model_id = m.id AND u.status = 'merged'), "
                "(SELECT count(*) FROM updates u WHERE u.model_id = m.id AND u.status = 'discarded') FROM models m ORDER BY m.id");
    while (q.step()) {
      models.push_back({{"task", q.text(0)}, {"generations", q.integer(1)}, {"rejected_candidates", q.integer(2)},
                        {"updates", {{"queued", q.integer(3)}, {"merged", q.integer(4)}, {"discarded", q.integer(5)}}}});
    }
  }
  Statement q(db_->handle, "SELECT count(*) FROM sites WHERE role = 'site'");
  q.step();
  return {{"events", events}, {"models", models}, {"sites", q.integer(0)}};
}

std::vector<std::string> Registry::checkConsistency(const BlobStore& blobs) const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> problems;
  {
    Statement q(db_->handle,
                "SELECT u.id, u.merged_into FROM updates u WHERE u.status = 'merged' AND NOT EXISTS "
                "(SELECT 1 FROM generations g WHERE g.model_id = u.model_id AND g.generation = u.merged_into)");
    while (q.step()) problems.push_back("update " + std::to_string(q.integer(0)) + " is marked merged into missing generation " + q.text(1));
  }
  {
    Statement q(db_->handle, "SELECT model_id, generation, weights_sha256 FROM generations");
    while (q.step()) {
      if (!blobs.contains(q.text(2))) {
        problems.push_back("generation " + std::to_string(q.integer(1)) + " of model " + std::to_string(q.integer(0)) +
                           ": weights blob " + q.text(2) + " is missing");
      }
    }
  }
  {
    Statement q(db_->handle, "SELECT id, blob_sha256 FROM updates");
    while (q.step()) {
      if (!blobs.contains(q.text(1))) problems.push_back("update " + std::to_string(q.integer(0)) + ": blob " + q.text(1) + " is missing");
    }
  }
  {
    Statement q(db_->handle,
                "SELECT g.model_id, g.generation FROM generations g WHERE g.parent IS NOT NULL AND NOT EXISTS "
                "(SELECT 1 FROM generations p WHERE p.model_id = g.model_id AND p.generation = g.parent)");
    while (q.step()) problems.push_back("generation " + std::to_string(q.integer(1)) + " has a missing parent");
  }
  return problems;
}

}  // namespace tessera::server
