#pragma once
// Site tokens: bearer secrets shown to the operator once. The registry keeps only their
// SHA-256, so a copied database file does not let anyone act as a site.

#include <string>
#include <string_view>

namespace tessera::server {

// "tsk_" + 64 hex digits of 32 random bytes from the kernel.
std::string newSiteToken();
// What the sites table stores and looks tokens up by.
std::string tokenHash(std::string_view token);
// Names appear in logs, stats and file names: [A-Za-z0-9._-]{1,64}.
bool isValidSiteName(const std::string& name);

}  // namespace tessera::server
