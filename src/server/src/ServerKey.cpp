#include "tessera/server/ServerKey.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "tessera/common/Error.h"

namespace tessera::server {

namespace fs = std::filesystem;

fs::path serverKeyFile(const fs::path& dataDir) { return dataDir / "server-key"; }

common::SigningKey loadOrCreateServerKey(const fs::path& dataDir) {
  const fs::path file = serverKeyFile(dataDir);
  std::error_code ec;
  if (!fs::exists(file, ec)) {
    const common::SigningKey fresh = common::SigningKey::generate();
    const fs::path candidate = file.string() + ".new-" + std::to_string(::getpid()) + "-" + common::randomHex(4);
    fresh.save(candidate);
    // link() never replaces: whoever was first keeps the key every signature so far was made with.
    if (::link(candidate.c_str(), file.c_str()) != 0 && errno != EEXIST) {
      const std::string reason = std::strerror(errno);
      fs::remove(candidate, ec);
      fs::remove(candidate.string() + ".pub", ec);
      throw Error(ErrorCode::Io, file.string() + ": cannot create the server key: " + reason);
    }
    fs::remove(candidate, ec);
    fs::remove(candidate.string() + ".pub", ec);
  }
  common::SigningKey key = common::SigningKey::load(file);
  const fs::path pub = file.string() + ".pub";
  if (!fs::exists(pub, ec)) {
    std::ofstream out(pub);
    out << key.publicKeyHex() << "\n";
  }
  return key;
}

}  // namespace tessera::server
