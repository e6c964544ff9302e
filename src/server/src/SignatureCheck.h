#pragma once
// Signed uploads. A site with a registered Ed25519 key (or every site, under
// ServerOptions::requireSignatures) sends its update with
//   X-Tessera-Nonce: 32 hex digits, fresh for every request
//   X-Tessera-Signature: 128 hex digits, the site key's signature of
//                        common::updateSignatureMessage(task, site, base generation, nonce,
//                        SHA-256 of the whole update file)
// The headers are checked before the body is read (unsigned, malformed or a nonce seen before
// are refused at once); the signature once the body's hash is known, before anything is stored.

#include <optional>
#include <string>

#include <httplib.h>

#include "tessera/server/Registry.h"

namespace tessera::server {

struct UploadSignature {
  std::string publicKey;  // the site's registered key
  std::string nonce;
  std::string signature;
};

// Error("unsigned") when a signature is needed and missing, ("bad_signature") when one is sent
// but the site has no key to check it with, ("bad_request") for malformed headers and
// ("replay") for a nonce this site used before. Nothing when the upload is unsigned and may be.
std::optional<UploadSignature> readUploadSignature(const httplib::Request& req, const Registry& registry, const Site& site,
                                                   bool required);

// Error("bad_signature") unless the signature covers exactly this upload; then claims the nonce
// (Error("replay") when another request took it meanwhile).
void verifyUploadSignature(Registry& registry, const Site& site, const UploadSignature& signature, const std::string& task,
                           int64_t baseGeneration, const std::string& updateSha256);

}  // namespace tessera::server
