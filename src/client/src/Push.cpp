#include <chrono>

#include <nlohmann/json.hpp>

#include "UsageEvents.h"
#include "tessera/client/ApiClient.h"
#include "tessera/common/Error.h"
#include "tessera/client/ModelCache.h"
#include "tessera/client/SiteState.h"
#include "tessera/client/SiteTrainer.h"
#include "tessera/federation/ModelUpdate.h"
#include "tessera/common/Error.h"

namespace tessera::client {

namespace {

std::string idText(const nlohmann::json& id) { return id.is_string() ? id.get<std::string>() : id.dump(); }

}  // namespace

nlohmann::json push(const ClientConfig& config, std::ostream& log) {
  SiteState state(config.home, config.task);
  const auto record = state.readTrained();
  if (!record) {
    throw Error(ErrorCode::NotFound, state.trainedInfoPath().string() +
                                       ": nothing to push; run `tessera client train --cases DIR` first");
  }
  if (!record->pushed.is_null()) {
    // Counting one training twice would give this site double weight in the merge.
    throw Error(ErrorCode::Rejected, state.trainedInfoPath().string() + ": this training was already pushed as update " +
                                      idText(record->pushed.value("update", nlohmann::json())) +
                                      "; train again before pushing");
  }
  const model::Model trained = state.loadTrained(*record);
  const model::Model base = ModelCache(config.home).load(config.task, record->baseGeneration);

  federation::ModelUpdate update;
  try {
    update = federation::makeDeltaUpdate(trained, base, record->samples, record->metrics);
  } catch (const Error& e) {
    throw Error(ErrorCode::Config, state.trainedModelPath().string() + " does not fit its base generation " +
                                    std::to_string(record->baseGeneration) + ": " + e.what());
  }
  update.header.task = config.task;
  update.header.baseGeneration = record->baseGeneration;
  const std::string bytes = federation::encodeUpdate(update);

  ApiClient api(config);
  log << "pushing " << config.task << " update (base generation " << record->baseGeneration << ", " << record->samples
      << " samples, " << bytes.size() / 1024 << " KiB) to " << api.serverUrl() << "\n";
  const auto start = std::chrono::steady_clock::now();
  nlohmann::json answer = api.pushUpdate(config.task, bytes);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  TrainedRecord pushed = *record;
  pushed.pushed = {{"update", answer.value("update", nlohmann::json())}, {"at", utcNow()}, {"server", api.serverUrl()}};
  state.writeRecord(pushed);

  reportUsage(config, {{"type", "push"}, {"task", config.task}, {"seconds", seconds}}, log);
  return answer;
}

}  // namespace tessera::client
