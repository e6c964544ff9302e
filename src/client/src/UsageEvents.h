#pragma once
// Usage reporting is a courtesy to the federation's operators, never a reason for a site's
// command to fail: problems become a warning on `log`.

#include <ostream>

#include <nlohmann/json.hpp>

#include "tessera/client/ClientConfig.h"

namespace tessera::client {

void reportUsage(const ClientConfig& config, const nlohmann::json& event, std::ostream& log);
// Several events in one request (an array; nothing is sent when it is empty).
void reportUsageEvents(const ClientConfig& config, const nlohmann::json& events, std::ostream& log);

}  // namespace tessera::client
