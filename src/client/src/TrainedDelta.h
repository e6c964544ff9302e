#pragma once
// The update a site's last training makes: its weights minus the generation it started from.
// One place for the plain and the secure push, so both refuse a trained model that no longer
// fits its base with the same message.

#include <string>

#include "tessera/client/ClientConfig.h"
#include "tessera/client/ModelCache.h"
#include "tessera/client/SiteState.h"
#include "tessera/common/Error.h"
#include "tessera/federation/ModelUpdate.h"

namespace tessera::client {

inline federation::ModelUpdate trainedDelta(const ClientConfig& config, const SiteState& state, const TrainedRecord& record) {
  const model::Model trained = state.loadTrained(record);
  const model::Model base = ModelCache(config.home).load(config.task, record.baseGeneration);
  try {
    return federation::makeDeltaUpdate(trained, base, record.samples, record.metrics);
  } catch (const Error& e) {
    throw Error(ErrorCode::Config, state.trainedModelPath().string() + " does not fit its base generation " +
                                    std::to_string(record.baseGeneration) + ": " + e.what());
  }
}

}  // namespace tessera::client
