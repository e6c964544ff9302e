#pragma once
// Signs an upload with the site key (tessera/client/SiteKeys.h), when the site has one. What is
// signed: common::updateSignatureMessage (task, this site's name as the server knows it, base
// generation, a fresh nonce, SHA-256 of the update file).

#include <cstdint>
#include <map>
#include <ostream>
#include <string>

#include "tessera/client/ApiClient.h"
#include "tessera/client/ClientConfig.h"

namespace tessera::client {

// X-Tessera-Nonce and X-Tessera-Signature, or nothing when home/site-key does not exist.
std::map<std::string, std::string> uploadSignatureHeaders(const ClientConfig& config, ApiClient& api, const std::string& task,
                                                          int64_t baseGeneration, const std::string& updateBytes,
                                                          std::ostream& log);

}  // namespace tessera::client
