#include "tessera/client/SiteKeys.h"

#include "tessera/common/Ed25519.h"
#include "tessera/common/Error.h"

namespace tessera::client {

namespace fs = std::filesystem;

fs::path siteKeyFile(const fs::path& home) { return home / "site-key"; }

std::string createSiteKey(const fs::path& home, bool replace) {
  const fs::path file = siteKeyFile(home);
  std::error_code ec;
  if (fs::exists(file, ec) && !replace) {
    throw Error(ErrorCode::Conflict, file.string() + ": this site has a key already (public half in " + file.string() +
                                         ".pub); pass --replace for a new one, which the server operator must then register");
  }
  const auto key = common::SigningKey::generate();
  key.save(file);
  return key.publicKeyHex();
}

}  // namespace tessera::client
