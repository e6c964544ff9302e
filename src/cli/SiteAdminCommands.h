#pragma once
// `tessera server admin set-site-key | revoke-site | rotate-token | server-key`: the operator's
// side of integrity (site keys, tokens, the server's own key).

#include <utility>
#include <vector>

#include "Commands.h"

namespace tessera::cli {

void addSiteAdminCommands(CLI::App& admin, std::vector<std::pair<CLI::App*, Action>>& actions);

}  // namespace tessera::cli
