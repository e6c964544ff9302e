// Registry: opening the database, and sites with their tokens.
#include "tessera/server/Registry.h"

#include <system_error>

#include "Database.h"
#include "Rows.h"
#include "Schema.h"
#include "TokenHash.h"
#include "tessera/common/Error.h"

namespace tessera::server {

namespace fs = std::filesystem;

Registry::Registry(const fs::path& dataDir) : dataDir_(dataDir) {
  std::error_code ec;
  fs::create_directories(dataDir, ec);
  if (ec) throw Error(ErrorCode::Io, dataDir.string() + ": cannot create the data directory: " + ec.message());
  const fs::path file = dataDir / "registry.sqlite3";
  db_ = std::make_unique<db::Connection>(file);
  try {
    db::migrate(*db_);
  } catch (const Error& e) {
    throw Error(e.code(), file.string() + ": " + e.what());
  }
  try {
    signUnsignedGenerations();
  } catch (const Error& e) {
    // A folder opened read-only (inspection, a mounted backup) keeps them unsigned for now.
    if (e.code() != ErrorCode::Io) throw;
  }
}

Registry::~Registry() = default;

std::pair<Site, std::string> Registry::addSite(const std::string& name, const std::string& role) {
  if (!isValidSiteName(name)) {
    throw Error(ErrorCode::BadRequest, "site name '" + name.substr(0, 80) + "' must be 1-64 letters, digits, '.', '_' or '-'");
  }
  if (role != "site" && role != "admin") {
    throw Error(ErrorCode::BadRequest, "role '" + role.substr(0, 80) + "' is neither 'site' nor 'admin'");
  }
  const std::string token = newSiteToken();
  Site site{0, name, role, rows::now()};
  std::lock_guard lock(mutex_);
  try {
    db::Statement q(*db_, "adding a site", "INSERT INTO sites(name, role, token_sha256, created_at) VALUES(?,?,?,?)");
    q.bind(1, name).bind(2, role).bind(3, tokenHash(token)).bind(4, site.createdAt).run();
  } catch (const Error& e) {
    if (e.code() == ErrorCode::Conflict) throw Error(ErrorCode::Conflict, "a site named '" + name + "' already exists");
    throw;
  }
  site.id = db_->lastInsertId();
  return {site, token};
}

std::string Registry::rotateToken(const std::string& name) {
  const std::string token = newSiteToken();
  std::lock_guard lock(mutex_);
  db::Statement q(*db_, "replacing a site token", "UPDATE sites SET token_sha256 = ?, revoked_at = NULL WHERE name = ?");
  q.bind(1, tokenHash(token)).bind(2, name).run();
  if (db_->changes() != 1) throw Error(ErrorCode::NotFound, "no site named '" + name.substr(0, 80) + "'");
  return token;
}

std::optional<Site> Registry::siteForToken(const std::string& token) const {
  // Tokens we issue are 68 characters; anything far off is not worth hashing.
  if (token.empty() || token.size() > 256) return std::nullopt;
  std::lock_guard lock(mutex_);
  db::Statement q(*db_, "looking up a token",
                  "SELECT id, name, role, created_at FROM sites WHERE token_sha256 = ? AND revoked_at IS NULL");
  q.bind(1, tokenHash(token));
  if (!q.step()) return std::nullopt;
  return rows::readSite(q);
}

std::vector<Site> Registry::sites() const {
  std::lock_guard lock(mutex_);
  db::Statement q(*db_, "listing sites", "SELECT id, name, role, created_at FROM sites ORDER BY id");
  std::vector<Site> out;
  while (q.step()) out.push_back(rows::readSite(q));
  return out;
}

}  // namespace tessera::server
