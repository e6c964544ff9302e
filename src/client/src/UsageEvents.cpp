#include "UsageEvents.h"

#include "tessera/client/ApiClient.h"

namespace tessera::client {

void reportUsage(const ClientConfig& config, const nlohmann::json& event, std::ostream& log) {
  try {
    ApiClient api(config);
    api.postEvents(nlohmann::json::array({event}));
  } catch (const std::exception& e) {
    log << "tessera: warning: could not report the " << event.value("type", "usage") << " event: " << e.what() << "\n";
  }
}

void reportUsageEvents(const ClientConfig& config, const nlohmann::json& events, std::ostream& log) {
  if (events.empty()) return;
  try {
    ApiClient api(config);
    api.postEvents(events);
  } catch (const std::exception& e) {
    log << "tessera: warning: could not report " << events.size() << " usage event(s): " << e.what() << "\n";
  }
}

}  // namespace tessera::client
