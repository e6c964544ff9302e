#pragma once
// The server's own Ed25519 key: DATA/server-key (secret, mode 0600) signs every generation the
// server publishes; DATA/server-key.pub is its public half, which the operator hands to sites
// (`tessera client … --server-key`) and GET /v1/server-key serves.

#include <filesystem>

#include "tessera/common/Ed25519.h"

namespace tessera::server {

std::filesystem::path serverKeyFile(const std::filesystem::path& dataDir);
// Loads the key, or creates it when the folder has none. Two processes creating it at once (the
// server and an admin command) end up with the same key: the first file in place wins.
common::SigningKey loadOrCreateServerKey(const std::filesystem::path& dataDir);

}  // namespace tessera::server
