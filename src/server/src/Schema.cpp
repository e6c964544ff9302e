#include "Schema.h"

#include <iterator>
#include <string>

#include "Database.h"
#include "tessera/common/Error.h"

namespace tessera::server::db {

namespace {

constexpr const char* kTables = R"sql(
CREATE TABLE IF NOT EXISTS sites(
  id INTEGER PRIMARY KEY,
  name TEXT UNIQUE NOT NULL,
  role TEXT NOT NULL CHECK(role IN ('site','admin')),
  token_sha256 TEXT UNIQUE NOT NULL,
  created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS models(
  id INTEGER PRIMARY KEY,
  task TEXT UNIQUE NOT NULL,
  modality TEXT, anatomy TEXT, disease TEXT,
  header_json TEXT NOT NULL,
  policy_json TEXT NOT NULL,
  created_at REAL);
CREATE TABLE IF NOT EXISTS generations(
  model_id INTEGER REFERENCES models(id),
  generation INTEGER NOT NULL,
  parent INTEGER,
  weights_sha256 TEXT NOT NULL,
  weights_bytes INTEGER NOT NULL,
  parameters INTEGER NOT NULL,
  strategy TEXT NOT NULL,
  merged_updates_json TEXT NOT NULL DEFAULT '[]',
  validation_json TEXT,
  created_at REAL NOT NULL,
  PRIMARY KEY(model_id, generation));
CREATE TABLE IF NOT EXISTS rejected_candidates(
  id INTEGER PRIMARY KEY,
  model_id INTEGER REFERENCES models(id),
  base_generation INTEGER,
  strategy TEXT,
  update_ids_json TEXT,
  validation_json TEXT,
  reason TEXT,
  created_at REAL);
CREATE TABLE IF NOT EXISTS updates(
  id INTEGER PRIMARY KEY,
  model_id INTEGER REFERENCES models(id),
  site_id INTEGER REFERENCES sites(id),
  base_generation INTEGER NOT NULL,
  kind TEXT NOT NULL,
  samples REAL NOT NULL,
  metrics_json TEXT NOT NULL,
  blob_sha256 TEXT NOT NULL,
  weights_offset INTEGER NOT NULL,
  weights_bytes INTEGER NOT NULL,
  delta_norm REAL,
  status TEXT NOT NULL CHECK(status IN ('queued','merged','discarded')),
  merged_into INTEGER,
  reason TEXT,
  received_at REAL NOT NULL,
  merged_at REAL);
-- The merge loop polls queued updates per model; the queue gauge counts them over all models.
CREATE INDEX IF NOT EXISTS updates_by_model_status ON updates(model_id, status);
CREATE INDEX IF NOT EXISTS updates_by_status ON updates(status);
CREATE TABLE IF NOT EXISTS events(
  id INTEGER PRIMARY KEY,
  site_id INTEGER REFERENCES sites(id),
  task TEXT,
  type TEXT NOT NULL,
  seconds REAL,
  dice REAL,
  at REAL NOT NULL);
PRAGMA user_version = 1;
)sql";

// Version 2: idempotent uploads and per-site limits. An update remembers the client's
// idempotency key (one per site and model); finding a site's update by its bytes and counting a
// site's recent events use indexes.
constexpr const char* kVersion2 = R"sql(
ALTER TABLE updates ADD COLUMN idempotency_key TEXT;
CREATE UNIQUE INDEX IF NOT EXISTS updates_by_idempotency_key ON updates(model_id, site_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS updates_by_site_blob ON updates(model_id, site_id, blob_sha256);
CREATE INDEX IF NOT EXISTS events_by_site_time ON events(site_id, at);
PRAGMA user_version = 2;
)sql";

// Version 3: differential privacy. The noise multiplier an update was released with (declared by
// the site in local mode, the policy's in central mode; NULL: none), which the privacy ledger
// composes per site and model.
constexpr const char* kVersion3 = R"sql(
ALTER TABLE updates ADD COLUMN dp_noise_multiplier REAL;
PRAGMA user_version = 3;
)sql";

// Version 4: integrity. A site's Ed25519 public key (hex; NULL: none registered) and when it was
// revoked (NULL: active); the server's signature of each generation (hex; NULL only in files
// from before, signed when the registry is next opened); the nonces of signed uploads, each
// usable once per site.
constexpr const char* kVersion4 = R"sql(
ALTER TABLE sites ADD COLUMN public_key TEXT;
ALTER TABLE sites ADD COLUMN revoked_at REAL;
ALTER TABLE generations ADD COLUMN signature TEXT;
CREATE TABLE IF NOT EXISTS update_nonces(
  site_id INTEGER NOT NULL REFERENCES sites(id),
  nonce TEXT NOT NULL,
  at REAL NOT NULL,
  PRIMARY KEY(site_id, nonce));
PRAGMA user_version = 4;
)sql";

// Step i takes a file from version i to i + 1 (version 0: a new, empty file). Append a step for
// each new version; never change one that has shipped.
constexpr const char* kSteps[] = {kTables, kVersion2, kVersion3, kVersion4};
static_assert(std::size(kSteps) == kSchemaVersion, "one migration step per schema version");

int userVersion(Connection& connection) {
  Statement q(connection, "reading the schema version", "PRAGMA user_version");
  q.step();
  return static_cast<int>(q.integer(0));
}

}  // namespace

void migrate(Connection& connection) {
  connection.transaction([&] {
    const int version = userVersion(connection);
    if (version > kSchemaVersion) {
      throw Error(ErrorCode::Io, "registry schema version " + std::to_string(version) +
                                   " is newer than this program understands (" + std::to_string(kSchemaVersion) + ")");
    }
    // Every step the file has not had yet, in order, inside this one transaction: a crash
    // mid-way leaves the file as it was.
    for (int step = version; step < kSchemaVersion; ++step) {
      connection.exec(("migrating the schema to version " + std::to_string(step + 1)).c_str(), kSteps[step]);
    }
  });
}

}  // namespace tessera::server::db
