#pragma once
// Which server key a site trusts, and the check of a generation's signature before the
// generation is used.

#include <ostream>

#include <nlohmann/json.hpp>

#include "tessera/client/ApiClient.h"
#include "tessera/client/ClientConfig.h"

namespace tessera::client {

// Checks the server's signature in a generation record (GET …/generations/G: task, generation,
// parent, weights_sha256, signature) against the trusted server key: config.serverKey when set,
// else the key pinned for this server URL in home/trusted-servers.json, else the key the server
// presents now, which is then pinned (trust on first use; logged). Error("bad_signature") for a
// signature that does not verify or a server presenting another key than the pinned one,
// Error("unsigned") for a record without a signature once a key is trusted. A server without
// signing (no /v1/server-key) and nothing pinned: a warning, no check.
void verifyGenerationRecord(const ClientConfig& config, ApiClient& api, const nlohmann::json& generation, std::ostream& log);

}  // namespace tessera::client
