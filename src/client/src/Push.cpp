#include <chrono>

#include <nlohmann/json.hpp>

#include "TrainedDelta.h"
#include "UploadSigning.h"
#include "UsageEvents.h"
#include "tessera/client/ApiClient.h"
#include "tessera/client/PrivatePush.h"
#include "tessera/client/SecurePush.h"
#include "tessera/common/AtomicFile.h"
#include "tessera/common/Error.h"
#include "tessera/common/Sha256.h"
#include "tessera/client/ModelCache.h"
#include "tessera/client/SiteState.h"
#include "tessera/client/SiteTrainer.h"
#include "tessera/federation/ModelUpdate.h"
#include "tessera/common/Error.h"

namespace tessera::client {

namespace {

std::string idText(const nlohmann::json& id) { return id.is_string() ? id.get<std::string>() : id.dump(); }

// The update's idempotency key: derived from the training it carries, so every retry of this
// push (after a lost answer, a crash before the record was written, a second `tessera client
// push`) sends the same key and the server counts the update once; a new training gets a new one.
std::string idempotencyKey(const std::string& task, const TrainedRecord& record) {
  const std::string what = "tessera push\n" + task + "\n" + std::to_string(record.baseGeneration) + "\n" +
                           record.weightsSha256 + "\n" + record.trainedAt;
  return "push-" + common::sha256Hex(what).substr(0, 32);
}

}  // namespace

nlohmann::json push(const ClientConfig& config, std::ostream& log) { return pushWithPrivacy(config, log, std::nullopt); }

nlohmann::json pushWithPrivacy(const ClientConfig& config, std::ostream& log,
                               const std::optional<federation::DpParameters>& dp) {
  if (dp) dp->validate();
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
  if (serverWantsSecureAggregation(config)) {
    if (dp) {
      throw Error(ErrorCode::Config, "model '" + config.task + "' runs secure aggregation, whose rounds the server's privacy ledger does "
                                     "not count: push without --dp-clip/--dp-noise (the policy's central DP noises the sum)");
    }
    return pushSecurely(config, log);
  }
  federation::ModelUpdate update = trainedDelta(config, state, *record);
  update.header.task = config.task;
  update.header.baseGeneration = record->baseGeneration;
  update.header.idempotencyKey = idempotencyKey(config.task, *record);
  std::string bytes;
  if (dp) {
    const auto privateFile = state.trainedInfoPath().parent_path() / ("private-" + update.header.idempotencyKey + ".tsu");
    std::error_code ec;
    if (std::filesystem::exists(privateFile, ec)) {
      bytes = common::readFile(privateFile);
      const auto sent = federation::decodeUpdate(bytes, privateFile.string());
      if (!sent.header.dp || sent.header.dp->clipNorm != dp->clipNorm || sent.header.dp->noiseMultiplier != dp->noiseMultiplier) {
        throw Error(ErrorCode::Config, privateFile.string() + ": this training was already noised with other DP parameters; "
                                                             "push it with those, or train again");
      }
      log << "resending the noised update written before (" << privateFile.string() << ")\n";
    } else {
      federation::NoiseSource noise;
      const double norm = federation::privatizeLocally(update.weights, *dp, noise);
      update.header.dp = *dp;
      bytes = federation::encodeUpdate(update);
      common::writeFileAtomically(privateFile, bytes);
      log << "local DP: delta norm " << norm << " clipped to " << dp->clipNorm << ", noise std "
          << dp->noiseMultiplier * dp->clipNorm << " per parameter\n";
    }
  } else {
    bytes = federation::encodeUpdate(update);
  }

  ApiClient api(config);
  log << "pushing " << config.task << " update (base generation " << record->baseGeneration << ", " << record->samples
      << " samples, " << bytes.size() / 1024 << " KiB) to " << api.serverUrl() << "\n";
  const auto start = std::chrono::steady_clock::now();
  nlohmann::json answer =
      api.pushUpdate(config.task, bytes, uploadSignatureHeaders(config, api, config.task, record->baseGeneration, bytes, log));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  TrainedRecord pushed = *record;
  pushed.pushed = {{"update", answer.value("update", nlohmann::json())}, {"at", utcNow()}, {"server", api.serverUrl()}};
  state.writeRecord(pushed);

  reportUsage(config, {{"type", "push"}, {"task", config.task}, {"seconds", seconds}}, log);
  return answer;
}

}  // namespace tessera::client
