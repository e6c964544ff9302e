#pragma once
// The registry's tables, created on first open and versioned with PRAGMA user_version.

namespace tessera::server::db {

class Connection;

inline constexpr int kSchemaVersion = 4;

// Creates the tables of a new file, or brings an older file up to kSchemaVersion, in one
// transaction. Error("io") if the file was written by a newer schema than this program knows:
// guessing at it could destroy data.
void migrate(Connection& connection);

}  // namespace tessera::server::db
