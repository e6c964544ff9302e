#include "SiteAdminCommands.h"

#include <filesystem>
#include <iostream>
#include <memory>

#include "tessera/common/Ed25519.h"
#include "tessera/common/Error.h"
#include "tessera/server/Registry.h"
#include "tessera/server/ServerKey.h"

namespace tessera::cli {

namespace fs = std::filesystem;

namespace {

// These change an existing folder: a typo in --data must not create an empty registry.
void requireRegistry(const std::string& data) {
  std::error_code ec;
  if (!fs::is_regular_file(fs::path(data) / "registry.sqlite3", ec)) {
    throw Error(ErrorCode::NotFound, data + ": holds no registry.sqlite3 (not a server data folder; see --data)");
  }
}

}  // namespace

void addSiteAdminCommands(CLI::App& admin, std::vector<std::pair<CLI::App*, Action>>& actions) {
  struct Args {
    std::string data = "tessera-server";
    std::string site, publicKey;
  };
  auto a = std::make_shared<Args>();
  auto common = [a](CLI::App* sub, bool needsSite) {
    sub->add_option("--data", a->data, "The server's data folder")->capture_default_str();
    if (needsSite) sub->add_option("--site", a->site, "Site name")->required();
  };

  auto* setKey = admin.add_subcommand(
      "set-site-key", "Register a site's Ed25519 public key: from then on its updates must be signed with it");
  common(setKey, true);
  setKey->add_option("--public-key", a->publicKey, "The key: a .pub file from `tessera client keygen`, or its 64 hex digits")
      ->required();
  actions.emplace_back(setKey, [a] {
    requireRegistry(a->data);
    const std::string key = common::readPublicKey(a->publicKey, "--public-key");
    server::Registry(a->data).setSitePublicKey(a->site, key);
    std::cout << "site '" << a->site << "': public key " << key << " registered; its updates must now be signed\n";
    return 0;
  });

  auto* revoke = admin.add_subcommand("revoke-site", "Revoke a site's token at once (rotate-token issues a new one)");
  common(revoke, true);
  actions.emplace_back(revoke, [a] {
    requireRegistry(a->data);
    server::Registry(a->data).revokeSite(a->site);
    std::cout << "site '" << a->site << "': token revoked; requests with it get 401 from now on\n";
    return 0;
  });

  auto* rotate = admin.add_subcommand("rotate-token", "Give a site a new token (printed once); the old one stops working");
  common(rotate, true);
  actions.emplace_back(rotate, [a] {
    requireRegistry(a->data);
    const std::string token = server::Registry(a->data).rotateToken(a->site);
    std::cerr << "site '" << a->site << "': new token, shown only now (the old one no longer works):\n";
    std::cout << token << std::endl;
    return 0;
  });

  auto* serverKey = admin.add_subcommand(
      "server-key", "Print the server's public key (give it to sites as --server-key); creates the key if there is none");
  common(serverKey, false);
  actions.emplace_back(serverKey, [a] {
    requireRegistry(a->data);
    std::cout << server::loadOrCreateServerKey(a->data).publicKeyHex() << "\n";
    return 0;
  });
}

}  // namespace tessera::cli
