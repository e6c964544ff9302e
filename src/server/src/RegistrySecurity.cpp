// Registry: site keys, revocation, nonces of signed uploads, and the server's signatures of
// generations.
#include "Database.h"
#include "Rows.h"
#include "tessera/common/Error.h"
#include "tessera/common/SignedMessages.h"
#include "tessera/server/Registry.h"
#include "tessera/server/ServerKey.h"

namespace tessera::server {

namespace {

// Nonces are 32 hex digits from the client; anything else is refused before it gets here, and
// this bound keeps a table row small whatever a caller passes.
constexpr size_t kMaxNonceLength = 128;

}  // namespace

void Registry::setSitePublicKey(const std::string& name, const std::string& publicKeyHex) {
  const std::string key = publicKeyHex.empty() ? "" : common::normalizePublicKey(publicKeyHex, "public key of site '" + name + "'");
  std::lock_guard lock(mutex_);
  db::Statement q(*db_, "setting a site's public key", "UPDATE sites SET public_key = ? WHERE name = ?");
  if (key.empty()) q.bindNull(1);
  else q.bind(1, key);
  q.bind(2, name).run();
  if (db_->changes() != 1) throw Error(ErrorCode::NotFound, "no site named '" + name.substr(0, 80) + "'");
}

std::optional<std::string> Registry::sitePublicKey(int64_t siteId) const {
  std::lock_guard lock(mutex_);
  db::Statement q(*db_, "reading a site's public key", "SELECT public_key FROM sites WHERE id = ?");
  q.bind(1, siteId);
  if (!q.step()) return std::nullopt;
  std::string key = q.text(0);
  if (key.empty()) return std::nullopt;
  return key;
}

void Registry::revokeSite(const std::string& name) {
  std::lock_guard lock(mutex_);
  db::Statement q(*db_, "revoking a site", "UPDATE sites SET revoked_at = ? WHERE name = ?");
  q.bind(1, rows::now()).bind(2, name).run();
  if (db_->changes() != 1) throw Error(ErrorCode::NotFound, "no site named '" + name.substr(0, 80) + "'");
}

bool Registry::claimNonce(int64_t siteId, const std::string& nonce) {
  if (nonce.empty() || nonce.size() > kMaxNonceLength) throw Error(ErrorCode::BadRequest, "nonce must be 1-128 characters");
  std::lock_guard lock(mutex_);
  db::Statement q(*db_, "recording a nonce", "INSERT OR IGNORE INTO update_nonces(site_id, nonce, at) VALUES(?,?,?)");
  q.bind(1, siteId).bind(2, nonce).bind(3, rows::now()).run();
  return db_->changes() == 1;
}

bool Registry::nonceSeen(int64_t siteId, const std::string& nonce) const {
  std::lock_guard lock(mutex_);
  db::Statement q(*db_, "looking up a nonce", "SELECT 1 FROM update_nonces WHERE site_id = ? AND nonce = ?");
  q.bind(1, siteId).bind(2, nonce);
  return q.step();
}

std::string Registry::serverPublicKey() const {
  std::lock_guard lock(keyMutex_);
  if (!serverKey_) serverKey_ = std::make_shared<const common::SigningKey>(loadOrCreateServerKey(dataDir_));
  return serverKey_->publicKeyHex();
}

std::string Registry::signGeneration(const std::string& task, const GenerationRecord& g) const {
  std::shared_ptr<const common::SigningKey> key;
  {
    std::lock_guard lock(keyMutex_);
    if (!serverKey_) serverKey_ = std::make_shared<const common::SigningKey>(loadOrCreateServerKey(dataDir_));
    key = serverKey_;
  }
  return key->sign(common::generationSignatureMessage({task, g.generation, g.parent, g.weightsSha256}));
}

std::vector<std::string> Registry::checkSignatures() const {
  struct Row {
    std::string task;
    GenerationRecord g;
  };
  std::vector<Row> rows;
  {
    std::lock_guard lock(mutex_);
    db::Statement q(*db_, "reading generation signatures",
                    "SELECT m.task, g.generation, g.parent, g.weights_sha256, g.signature FROM generations g "
                    "JOIN models m ON m.id = g.model_id ORDER BY m.task, g.generation");
    while (q.step()) {
      Row r;
      r.task = q.text(0);
      r.g.generation = q.integer(1);
      r.g.parent = q.optionalInteger(2);
      r.g.weightsSha256 = q.text(3);
      r.g.signature = q.text(4);
      rows.push_back(std::move(r));
    }
  }
  std::vector<std::string> problems;
  if (rows.empty()) return problems;
  std::error_code ec;
  if (!std::filesystem::exists(serverKeyFile(dataDir_), ec)) {
    problems.push_back(serverKeyFile(dataDir_).string() + ": missing, so no generation's signature can be checked (sites that "
                                                          "pinned the old key will refuse a new one)");
    return problems;
  }
  const std::string key = serverPublicKey();
  for (const auto& r : rows) {
    const std::string message = common::generationSignatureMessage({r.task, r.g.generation, r.g.parent, r.g.weightsSha256});
    if (!common::verifySignature(key, message, r.g.signature)) {
      problems.push_back("model '" + r.task + "' generation " + std::to_string(r.g.generation) +
                         ": signature does not verify with the server key (row or weights changed without it?)");
    }
  }
  return problems;
}

void Registry::signUnsignedGenerations() {
  struct Unsigned {
    int64_t modelId;
    std::string task;
    GenerationRecord g;
  };
  std::vector<Unsigned> todo;
  {
    std::lock_guard lock(mutex_);
    db::Statement q(*db_, "finding unsigned generations",
                    "SELECT g.model_id, m.task, g.generation, g.parent, g.weights_sha256 FROM generations g "
                    "JOIN models m ON m.id = g.model_id WHERE g.signature IS NULL OR g.signature = ''");
    while (q.step()) {
      GenerationRecord g;
      g.modelId = q.integer(0);
      g.generation = q.integer(2);
      g.parent = q.optionalInteger(3);
      g.weightsSha256 = q.text(4);
      todo.push_back({g.modelId, q.text(1), g});
    }
  }
  if (todo.empty()) return;
  std::lock_guard lock(mutex_);
  db_->transaction([&] {
    db::Statement q(*db_, "signing a generation", "UPDATE generations SET signature = ? WHERE model_id = ? AND generation = ?");
    for (const auto& u : todo) q.reset().bind(1, signGeneration(u.task, u.g)).bind(2, u.modelId).bind(3, u.g.generation).run();
  });
}

}  // namespace tessera::server
