#include <nlohmann/json.hpp>

#include "tessera/client/ApiClient.h"
#include "tessera/common/Error.h"
#include "tessera/client/ModelCache.h"
#include "tessera/client/SiteState.h"
#include "tessera/client/SiteTrainer.h"

namespace tessera::client {

namespace {

std::string idText(const nlohmann::json& id) { return id.is_string() ? id.get<std::string>() : id.dump(); }

// Asks the server, recording a failure in `server` instead of throwing; once the server proved
// unreachable the remaining questions are skipped rather than each waiting for a timeout.
template <typename Ask>
std::optional<nlohmann::json> ask(nlohmann::json& server, Ask&& question) {
  if (server.contains("error") && server.value("error_code", "") == "unreachable") return std::nullopt;
  try {
    auto answer = question();
    server["reachable"] = true;
    return answer;
  } catch (const Error& e) {
    if (!server.contains("error")) {
      server["error"] = e.what();
      server["error_code"] = std::string(e.codeName());
    }
    // Any answer, a refusal included, proves the server is there; "config" proves nothing.
    if (e.code() == ErrorCode::Unreachable) server["reachable"] = false;
    else if (e.code() != ErrorCode::Config) server["reachable"] = true;
    return std::nullopt;
  }
}

}  // namespace

nlohmann::json status(const ClientConfig& config) {
  nlohmann::json answer;
  nlohmann::json server{{"url", config.server}, {"reachable", nullptr}};
  std::unique_ptr<ApiClient> api;
  try {
    api = std::make_unique<ApiClient>(config);
  } catch (const Error& e) {
    server["error"] = e.what();
    server["error_code"] = std::string(e.codeName());
  }
  if (api) {
    if (auto me = ask(server, [&] { return api->whoami(); })) {
      server["name"] = me->value("name", "");
      server["role"] = me->value("role", "");
    }
  }

  answer["task"] = config.task.empty() ? nlohmann::json() : nlohmann::json(config.task);
  answer["latest_generation"] = nullptr;
  answer["cache"] = nullptr;
  answer["trained"] = nullptr;
  if (!config.task.empty()) {
    std::optional<int64_t> latest;
    if (api) {
      if (auto g = ask(server, [&] { return api->latestGeneration(config.task); })) {
        if ((*g)["generation"].is_number_integer()) latest = (*g)["generation"].get<int64_t>();
      }
    }
    if (latest) answer["latest_generation"] = *latest;

    const ModelCache cache(config.home);
    const auto cached = cache.latestCached(config.task);
    answer["cache"] = {{"folder", cache.folder(config.task).string()},
                       {"generations", cache.generations(config.task)},
                       {"latest", cached ? nlohmann::json(*cached) : nlohmann::json()},
                       {"up_to_date", latest ? nlohmann::json(cached == latest) : nlohmann::json()}};

    const SiteState state(config.home, config.task);
    try {
      if (const auto record = state.readTrained()) {
        nlohmann::json trained = toJson(*record);
        trained.erase("weights_sha256");
        trained["path"] = state.trainedModelPath().string();
        if (record->pushed.contains("secure_aggregation_round")) {
          // The server holds no update of this site, only the round's published sum.
          trained["pushed"]["status"] = "merged";
          trained["pushed"]["merged_into"] = record->pushed.value("generation", nlohmann::json());
        } else if (!record->pushed.is_null() && api) {
          const std::string id = idText(record->pushed.value("update", nlohmann::json()));
          if (auto update = ask(server, [&] { return api->update(id); })) {
            trained["pushed"]["status"] = update->value("status", "");
            if (update->contains("reason")) trained["pushed"]["reason"] = (*update)["reason"];
            if (update->contains("merged_into")) trained["pushed"]["merged_into"] = (*update)["merged_into"];
          }
        }
        answer["trained"] = trained;
      }
    } catch (const Error& e) {
      answer["trained"] = {{"error", e.what()}};
    }
  }
  answer["server"] = server;
  return answer;
}

}  // namespace tessera::client
