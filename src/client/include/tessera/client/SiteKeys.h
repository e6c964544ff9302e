#pragma once
// A site's Ed25519 key pair: home/site-key (secret, mode 0600) signs every update the site
// pushes; home/site-key.pub is what the operator registers (`tessera server admin add-site
// --public-key` or `set-site-key`). When the secret key file exists, `push` signs.

#include <filesystem>
#include <string>

namespace tessera::client {

std::filesystem::path siteKeyFile(const std::filesystem::path& home);
// Writes a new key pair and returns the public key (hex). Error("conflict") when the site has a
// key already and `replace` is false: a replaced key must be registered again.
std::string createSiteKey(const std::filesystem::path& home, bool replace);

}  // namespace tessera::client
