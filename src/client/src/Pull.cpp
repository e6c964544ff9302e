#include <nlohmann/json.hpp>

#include "ServerTrust.h"
#include "tessera/client/ApiClient.h"
#include "tessera/common/Error.h"
#include "tessera/client/ModelCache.h"
#include "tessera/client/SiteTrainer.h"

namespace tessera::client {

PullResult pull(const ClientConfig& config, std::ostream& log) {
  ModelCache cache(config.home);
  cache.folder(config.task);  // a missing task fails here, before any network traffic
  ApiClient api(config);
  const nlohmann::json latest = api.latestGeneration(config.task);
  if (!latest.contains("generation") || !latest["generation"].is_number_integer()) {
    throw Error(ErrorCode::Server, "the server at " + api.serverUrl() + " described the latest generation of " +
                                    config.task + " without an integer 'generation': " + latest.dump());
  }
  PullResult result;
  result.generation = latest["generation"].get<int64_t>();
  result.path = cache.pathFor(config.task, result.generation);
  // The summary carries the merge strategy, which train needs even when the server is away.
  cache.storeSummary(config.task, api.model(config.task));

  // The record's signature is checked before its weights hash decides what is used.
  verifyGenerationRecord(config, api, latest, log);
  const nlohmann::json announcedJson = latest.value("weights_sha256", nlohmann::json(""));
  const std::string announced = announcedJson.is_string() ? announcedJson.get<std::string>() : "";

  // A generation number names different weights after the server was rolled back or restored
  // from a backup: generations above the server's latest are gone there (train must not start
  // from them), and a cached file of the latest number counts only if its weights are the ones
  // the server's record names.
  for (const int64_t g : cache.generations(config.task)) {
    if (g <= result.generation) continue;
    std::error_code ec;
    std::filesystem::remove(cache.pathFor(config.task, g), ec);
    log << "tessera: cached generation " << g << " of " << config.task << " is newer than the server's latest ("
        << result.generation << "): the server was rolled back; removed it from the cache\n";
  }
  if (cache.contains(config.task, result.generation)) {
    try {
      const model::Model cached = cache.load(config.task, result.generation);
      if (announced.empty() || cached.weightsSha256() == announced) return result;
      log << "tessera: cached generation " << result.generation << " of " << config.task << " has weights "
          << cached.weightsSha256().substr(0, 12) << "…, the server's has " << announced.substr(0, 12)
          << "… (the server was rolled back or restored); downloading it again\n";
    } catch (const Error& e) {
      log << "tessera: warning: " << e.what() << "; downloading it again\n";
    }
  }
  log << "downloading " << config.task << " generation " << result.generation << " from " << api.serverUrl() << "\n";
  const std::string bytes = api.downloadModel(config.task, result.generation);
  cache.store(config.task, result.generation, bytes);
  // The transfer hash only proves the bytes arrived as sent; this proves they are the generation
  // the server's record describes.
  const model::Model model = cache.load(config.task, result.generation);
  if (!announced.empty() && announced != model.weightsSha256()) {
    std::error_code ec;
    std::filesystem::remove(result.path, ec);
    throw Error(ErrorCode::Checksum, "generation " + std::to_string(result.generation) + " of " + config.task +
                                      ": weights hash " + model.weightsSha256() + " differs from the server's record " +
                                      announced);
  }
  result.downloaded = true;
  return result;
}

}  // namespace tessera::client
