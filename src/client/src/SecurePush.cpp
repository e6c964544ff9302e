#include "tessera/client/SecurePush.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <thread>

#include "TrainedDelta.h"
#include "UsageEvents.h"
#include "tessera/client/ApiClient.h"
#include "tessera/client/ModelCache.h"
#include "tessera/client/SiteKeys.h"
#include "tessera/client/SiteState.h"
#include "tessera/common/Ed25519.h"
#include "tessera/common/Error.h"
#include "tessera/common/Sha256.h"
#include "tessera/common/SignedMessages.h"
#include "tessera/federation/FixedPoint.h"
#include "tessera/federation/ModelUpdate.h"
#include "tessera/federation/SecureAggregation.h"

namespace tessera::client {

namespace {

using Clock = std::chrono::steady_clock;

federation::RoundId roundIdOf(const std::string& hex) {
  federation::RoundId id{};
  if (hex.size() != 2 * id.size() || hex.find_first_not_of("0123456789abcdef") != std::string::npos) {
    throw Error(ErrorCode::Server, "the server's secure-aggregation round id '" + hex.substr(0, 40) + "' is not 32 hex digits");
  }
  for (size_t i = 0; i < id.size(); ++i) id[i] = static_cast<uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  return id;
}

// Signs each protocol message as an upload is signed (the server checks it the same way), when
// the site has a key.
class MessageSigner {
 public:
  MessageSigner(const ClientConfig& config, ApiClient& api, std::ostream& log) {
    const auto file = siteKeyFile(config.home);
    std::error_code ec;
    if (!std::filesystem::exists(file, ec)) return;
    key_.emplace(common::SigningKey::load(file));
    site_ = api.whoami().value("name", "");
    if (site_.empty()) throw Error(ErrorCode::Server, "the server at " + api.serverUrl() + " did not say which site this token is");
    log << "signing the protocol messages as site '" << site_ << "' with " << file.string() << "\n";
  }
  std::map<std::string, std::string> headers(const std::string& task, int64_t base, const std::string& message) const {
    if (!key_) return {};
    const std::string nonce = common::randomHex(16);
    return {{"X-Tessera-Nonce", nonce},
            {"X-Tessera-Signature", key_->sign(common::updateSignatureMessage({task, site_, base, nonce, common::sha256Hex(message)}))}};
  }

 private:
  std::optional<common::SigningKey> key_;
  std::string site_;
};

std::vector<float> flatten(const common::WeightSet& weights) {
  std::vector<float> values;
  for (const auto& t : weights) values.insert(values.end(), t.values.begin(), t.values.end());
  return values;
}

}  // namespace

nlohmann::json takePartInSecureRound(const ClientConfig& config, const std::string& task, int64_t baseGeneration,
                                     const common::WeightSet& delta, std::ostream& log, const SecureRoundOptions& options) {
  ApiClient api(config);
  const MessageSigner signer(config, api, log);
  const auto waitFor = [&](const std::string& what, double limit, const std::function<std::optional<std::string>()>& poll) {
    const auto start = Clock::now();
    for (;;) {
      if (auto answer = poll()) return *answer;
      if (std::chrono::duration<double>(Clock::now() - start).count() > limit) {
        throw Error(ErrorCode::Server, "secure aggregation: " + what + " did not come within " + std::to_string(static_cast<int>(limit)) +
                                           " s (other sites slow or gone, or the server stalled); nothing was pushed");
      }
      std::this_thread::sleep_for(std::chrono::duration<double>(options.pollSeconds));
    }
  };

  // 1. A place in a round (waiting while a round without this site is under way).
  const nlohmann::json place = nlohmann::json::parse(waitFor("a place in a round", options.joinWaitSeconds, [&]() -> std::optional<std::string> {
    auto reply = api.secAggJoin(task, baseGeneration);
    if (reply.waiting) return std::nullopt;
    return reply.body;
  }));
  const std::string round = place.at("round").get<std::string>();
  federation::SecAggConfig secagg;
  secagg.round = roundIdOf(round);
  secagg.siteCount = place.at("site_count").get<uint32_t>();
  secagg.threshold = place.at("threshold").get<uint32_t>();
  secagg.length = place.at("length").get<uint64_t>();
  secagg.validate();
  const uint32_t me = place.at("site_id").get<uint32_t>();
  const double stepWait = options.stepWaitSeconds > 0 ? options.stepWaitSeconds : place.at("step_seconds").get<double>() + 30;
  const std::string shortRound = round.substr(0, 8);
  log << "secure aggregation: round " << shortRound << "… of " << task << " on generation " << baseGeneration << ": site " << me
      << " of " << secagg.siteCount << " (threshold " << secagg.threshold << ")\n";

  std::vector<float> values = flatten(delta);
  if (values.size() != secagg.length) {
    throw Error(ErrorCode::ShapeMismatch, "secure aggregation: the update has " + std::to_string(values.size()) +
                                              " values, the round's model " + std::to_string(secagg.length));
  }
  if (!place["clip_norm"].is_null()) {
    // Central DP on the sum: the server's noise covers a site's influence only up to L2 norm C.
    const double clip = place["clip_norm"].get<double>();
    double norm = 0;
    for (const float v : values) norm += double(v) * v;
    norm = std::sqrt(norm);
    if (norm > clip) {
      for (float& v : values) v = static_cast<float>(v * (clip / norm));
    }
    log << "  central DP: delta norm " << norm << " clipped to " << clip << "\n";
  }
  const federation::FixedPointCodec codec(place.at("range").get<double>(), place.at("max_sites").get<uint32_t>());
  federation::SecAggClient client(secagg, me);

  const auto send = [&](const std::string& step, const std::string& message) {
    api.secAggPost(task, step, round, message, signer.headers(task, baseGeneration, message));
  };
  const auto fetch = [&](const std::string& step, const std::string& what) {
    return waitFor(what + " (round " + shortRound + "…)", stepWait, [&]() -> std::optional<std::string> {
      auto reply = api.secAggGet(task, step, round);
      if (reply.waiting) return std::nullopt;
      return reply.body;
    });
  };
  const auto leaving = [&](const std::string& step) -> bool {
    if (options.leaveAfter != step) return false;
    log << "  leaving the round after " << step << " (as asked)\n";
    return true;
  };

  send("advertise-keys", client.advertiseKeys());
  log << "  keys advertised; waiting for the other sites' keys\n";
  if (leaving("advertise-keys")) return {{"round", round}, {"left_after", "advertise-keys"}};
  const std::string keyList = fetch("keys", "the other sites' keys");
  send("shares", client.shareKeys(keyList));
  log << "  shares of this site's secrets sent\n";
  if (leaving("shares")) return {{"round", round}, {"left_after", "shares"}};
  const std::string myShares = fetch("my-shares", "the shares sent to this site");
  const std::string masked = client.maskedInput(myShares, codec.encode(values));
  send("masked-input", masked);
  log << "  masked input sent (" << masked.size() / 1024 << " KiB)\n";
  if (leaving("masked-input")) return {{"round", round}, {"left_after", "masked-input"}};
  const std::string survivors = fetch("survivors", "the list of surviving sites");
  send("unmask", client.unmask(survivors));
  log << "  unmasking answered; waiting for the round's outcome\n";

  nlohmann::json status;
  waitFor("the round's outcome (round " + shortRound + "…)", stepWait, [&]() -> std::optional<std::string> {
    status = api.secAggStatus(task, round);
    const std::string state = status.value("state", "");
    if (state == "published" || state == "held_back" || state == "aborted") return state;
    return std::nullopt;
  });
  const std::string state = status.value("state", "");
  if (state == "aborted") {
    throw Error(ErrorCode::Rejected, "secure-aggregation round " + round + " was aborted: " + status.value("reason", std::string("?")) +
                                         "; nothing was published");
  }
  if (state == "published") {
    log << "  round " << shortRound << "… published generation " << status["generation"].dump() << " from the sum of "
        << status["survivors"].size() << " site(s)\n";
  } else {
    log << "  round " << shortRound << "…: " << status.value("reason", std::string()) << "\n";
  }
  return status;
}

bool serverWantsSecureAggregation(const ClientConfig& config) {
  ApiClient api(config);
  try {
    return api.model(config.task).value("secure_aggregation", false);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::NotFound) return false;  // the plain push names the problem
    throw;
  }
}

nlohmann::json pushSecurely(const ClientConfig& config, std::ostream& log, const SecureRoundOptions& options) {
  SiteState state(config.home, config.task);
  const auto record = state.readTrained();
  if (!record) {
    throw Error(ErrorCode::NotFound, state.trainedInfoPath().string() + ": nothing to push; run `tessera client train --cases DIR` first");
  }
  if (!record->pushed.is_null()) {
    throw Error(ErrorCode::Rejected, state.trainedInfoPath().string() + ": this training was already pushed (" + record->pushed.dump() +
                                      "); train again before pushing");
  }
  const federation::ModelUpdate update = trainedDelta(config, state, *record);
  const auto start = Clock::now();
  nlohmann::json status = takePartInSecureRound(config, config.task, record->baseGeneration, update.weights, log, options);
  if (status.contains("left_after")) return status;
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  TrainedRecord pushed = *record;
  pushed.pushed = {{"secure_aggregation_round", status.value("round", std::string())},
                   {"generation", status.value("generation", nlohmann::json())},
                   {"at", utcNow()},
                   {"server", config.server}};
  state.writeRecord(pushed);
  reportUsage(config, {{"type", "push"}, {"task", config.task}, {"seconds", seconds}}, log);
  return status;
}

}  // namespace tessera::client
