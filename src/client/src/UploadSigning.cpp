#include "UploadSigning.h"

#include <filesystem>

#include "tessera/client/SiteKeys.h"
#include "tessera/common/Ed25519.h"
#include "tessera/common/Error.h"
#include "tessera/common/Sha256.h"
#include "tessera/common/SignedMessages.h"

namespace tessera::client {

std::map<std::string, std::string> uploadSignatureHeaders(const ClientConfig& config, ApiClient& api, const std::string& task,
                                                          int64_t baseGeneration, const std::string& updateBytes,
                                                          std::ostream& log) {
  const auto file = siteKeyFile(config.home);
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return {};
  const auto key = common::SigningKey::load(file);
  // The name the server knows this token by: the signature binds the update to that site.
  const nlohmann::json me = api.whoami();
  const std::string site = me.value("name", "");
  if (site.empty()) throw Error(ErrorCode::Server, "the server at " + api.serverUrl() + " did not say which site this token is");
  // A fresh nonce per request: a copy of this request is refused as a replay, while a retry
  // of the same update after a lost answer is signed anew and counted once (idempotency key).
  const std::string nonce = common::randomHex(16);
  const std::string signature =
      key.sign(common::updateSignatureMessage({task, site, baseGeneration, nonce, common::sha256Hex(updateBytes)}));
  log << "signed the update as site '" << site << "' with " << file.string() << "\n";
  return {{"X-Tessera-Nonce", nonce}, {"X-Tessera-Signature", signature}};
}

}  // namespace tessera::client
