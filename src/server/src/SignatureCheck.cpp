#include "SignatureCheck.h"

#include <algorithm>

#include "tessera/common/Ed25519.h"
#include "tessera/common/Error.h"
#include "tessera/common/SignedMessages.h"

namespace tessera::server {

namespace {

bool isLowerHex(const std::string& text, size_t length) {
  return text.size() == length &&
         std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

std::optional<UploadSignature> readUploadSignature(const httplib::Request& req, const Registry& registry, const Site& site,
                                                   bool required) {
  const std::string nonce = req.get_header_value("X-Tessera-Nonce");
  const std::string signature = req.get_header_value("X-Tessera-Signature");
  const auto key = registry.sitePublicKey(site.id);
  if (nonce.empty() && signature.empty()) {
    if (key) {
      throw Error(ErrorCode::Unsigned, "site '" + site.name +
                                           "' has a registered public key, so its updates must be signed (X-Tessera-Nonce and "
                                           "X-Tessera-Signature); is the site's secret key in the client's home?");
    }
    if (required) {
      throw Error(ErrorCode::Unsigned, "this server accepts signed updates only, and site '" + site.name +
                                           "' has no public key registered: run `tessera client keygen` at the site and "
                                           "`tessera server admin set-site-key` with its public key");
    }
    return std::nullopt;
  }
  if (!isLowerHex(nonce, 32)) throw Error(ErrorCode::BadRequest, "X-Tessera-Nonce must be 32 lower-case hex digits");
  if (!isLowerHex(signature, 128)) throw Error(ErrorCode::BadRequest, "X-Tessera-Signature must be 128 lower-case hex digits");
  if (!key) {
    throw Error(ErrorCode::BadSignature, "site '" + site.name +
                                             "' signed its update but has no public key registered to check it with: "
                                             "register it with `tessera server admin set-site-key`");
  }
  if (registry.nonceSeen(site.id, nonce)) {
    throw Error(ErrorCode::Replay, "nonce " + nonce + " was already used by site '" + site.name +
                                       "': a signed request is accepted once (a replayed upload?)");
  }
  return UploadSignature{*key, nonce, signature};
}

void verifyUploadSignature(Registry& registry, const Site& site, const UploadSignature& s, const std::string& task,
                           int64_t baseGeneration, const std::string& updateSha256) {
  const std::string message = common::updateSignatureMessage({task, site.name, baseGeneration, s.nonce, updateSha256});
  if (!common::verifySignature(s.publicKey, message, s.signature)) {
    throw Error(ErrorCode::BadSignature, "the signature of this update does not verify with site '" + site.name +
                                             "''s registered key: the update (" + updateSha256.substr(0, 12) +
                                             "…) was changed after signing, or signed with another key");
  }
  if (!registry.claimNonce(site.id, s.nonce)) {
    throw Error(ErrorCode::Replay, "nonce " + s.nonce + " was already used by site '" + site.name + "'");
  }
}

}  // namespace tessera::server
