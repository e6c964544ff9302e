#pragma once
// `tessera server admin backup --data DIR --out PATH`: a consistent copy of a server's data
// folder that `tessera server --data PATH` runs from, taken while the server keeps running.
//
// The registry is copied with SQLite's online backup API (one consistent snapshot, whatever the
// server commits meanwhile); then every blob that snapshot names (generation weights, uploaded
// updates) is hard-linked into PATH/blobs/ where PATH is on the same filesystem (blobs are
// immutable: replaced only by rename, never rewritten) and copied otherwise, with its SHA-256
// checked on the way; the validation sets are copied; PATH/highwater.json is the snapshot's own
// high-water mark. Everything is fsync'd and built in a temporary sibling folder that is renamed
// to PATH at the end, so PATH either is a whole backup or does not exist.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace tessera::server {

struct BackupReport {
  std::filesystem::path out;
  int64_t models = 0, generations = 0, updates = 0;
  int64_t blobsLinked = 0, blobsCopied = 0;
  uint64_t blobBytes = 0;  // the blobs' total size, linked or copied
  int64_t validationFiles = 0;
  // Blobs the registry needs (generation weights, queued updates) that were absent or damaged
  // in DIR: the backup holds everything else, and `tessera server admin check` on it names these.
  std::vector<std::string> problems;
};

// Error(NotFound) when DIR holds no registry.sqlite3; Error(Conflict) when PATH exists and is
// not an empty folder; Error(Io) naming the file on any read or write failure (PATH is then
// not created).
BackupReport backupDataFolder(const std::filesystem::path& dataDir, const std::filesystem::path& out);

}  // namespace tessera::server
