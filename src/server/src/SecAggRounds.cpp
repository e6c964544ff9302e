#include "SecAggRounds.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>

#include "MergeLoop.h"
#include "tessera/common/AtomicFile.h"
#include "tessera/common/Error.h"
#include "tessera/common/Sha256.h"
#include "tessera/federation/FixedPoint.h"
#include "tessera/federation/MergePolicy.h"
#include "tessera/federation/SecureAggregation.h"
#include "tessera/federation/SecureAggregationPolicy.h"

namespace tessera::server {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string hexOf(const federation::RoundId& id) {
  static const char digits[] = "0123456789abcdef";
  std::string text;
  for (const uint8_t b : id) {
    text.push_back(digits[b >> 4]);
    text.push_back(digits[b & 15]);
  }
  return text;
}

// A round id from a request becomes a file name: 32 lower-case hex digits and nothing else.
void requireRoundId(const std::string& round) {
  if (round.size() != 32 || round.find_first_not_of("0123456789abcdef") != std::string::npos) {
    throw Error(ErrorCode::BadRequest, "round '" + round.substr(0, 40) + "' is not a round id (32 hex digits)");
  }
}

const char* stepName(SecAggStep step) {
  switch (step) {
    case SecAggStep::Advertise: return "advertise-keys";
    case SecAggStep::Shares: return "shares";
    case SecAggStep::Masked: return "masked-input";
    case SecAggStep::Unmask: return "unmask";
  }
  return "?";
}

bool isOver(const std::string& state) { return state == "published" || state == "held_back" || state == "aborted"; }

}  // namespace

struct SecAggRounds::Round {
  ModelRecord model;
  std::string id;  // hex of config.round
  federation::SecAggConfig config;
  int64_t baseGeneration = 0;
  double range = 1;                   // the codec's R
  std::optional<double> centralClip;  // central DP: C (= R) …
  double noiseMultiplier = 0;         // … and z
  double stepSeconds = 120;
  std::unique_ptr<federation::SecAggServer> server;
  SecAggStep step = SecAggStep::Advertise;
  std::string state = "advertise-keys";  // the open step, or published / held_back / aborted
  std::string reason;
  std::optional<int64_t> generation;
  double createdAt = 0, deadline = 0;
  std::map<int64_t, uint32_t> members;  // registry site id → protocol id 1..n
  std::map<uint32_t, std::string> names;
  std::set<uint32_t> advertised, shared, masked, unmasked;
  std::string keyList, survivorList;  // relays of closed steps

  bool over() const { return isOver(state); }
  const std::set<uint32_t>& expected() const {  // who the open step waits for
    static const std::set<uint32_t> none;
    switch (step) {
      case SecAggStep::Advertise: return none;
      case SecAggStep::Shares: return advertised;
      case SecAggStep::Masked: return shared;
      case SecAggStep::Unmask: return masked;
    }
    return none;
  }
  std::set<uint32_t>& received() {
    switch (step) {
      case SecAggStep::Advertise: return advertised;
      case SecAggStep::Shares: return shared;
      case SecAggStep::Masked: return masked;
      case SecAggStep::Unmask: return unmasked;
    }
    return unmasked;
  }
  std::vector<std::string> namesOf(const std::set<uint32_t>& ids) const {
    std::vector<std::string> out;
    for (uint32_t id : ids) out.push_back(names.at(id));
    return out;
  }
};

SecAggRounds::SecAggRounds(Registry& registry, fs::path dataDir, MergeLoop& mergeLoop, std::function<void(const std::string&)> log)
    : registry_(registry), dataDir_(std::move(dataDir)), mergeLoop_(mergeLoop), log_(std::move(log)) {}

SecAggRounds::~SecAggRounds() = default;

fs::path SecAggRounds::fileOf(const std::string& task, const std::string& round) const {
  requireRoundId(round);
  return dataDir_ / "secagg" / task / (round + ".json");
}

void SecAggRounds::abortInterrupted() {
  const fs::path root = dataDir_ / "secagg";
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return;
  for (const auto& task : fs::directory_iterator(root)) {
    if (!task.is_directory()) continue;
    for (const auto& file : fs::directory_iterator(task.path())) {
      if (file.path().extension() != ".json") continue;
      json j;
      try {
        j = json::parse(common::readFile(file.path()));
      } catch (const std::exception& e) {
        if (log_) log_("start-up: unreadable secure-aggregation round " + file.path().string() + ": " + e.what());
        continue;
      }
      const std::string state = j.value("state", "");
      if (isOver(state)) continue;
      j["state"] = "aborted";
      j["reason"] = "the server restarted during step " + state + " (round state is held in memory); nothing was published";
      j["seconds_left"] = 0;
      common::writeFileAtomically(file.path(), j.dump(2));
      if (log_) log_("start-up: secure-aggregation round " + j.value("round", std::string("?")) + " of model '" + task.path().filename().string() +
                     "' aborted (left open by the previous process)");
    }
  }
}

json SecAggRounds::view(const Round& r) const {
  return {{"round", r.id},
          {"task", r.model.task},
          {"state", r.state},
          {"base_generation", r.baseGeneration},
          {"site_count", r.config.siteCount},
          {"threshold", r.config.threshold},
          {"sites", r.namesOf([&] {
             std::set<uint32_t> all;
             for (const auto& [site, id] : r.members) all.insert(id);
             return all;
           }())},
          {"advertised", r.advertised.size()},
          {"shared", r.shared.size()},
          {"masked", r.masked.size()},
          {"unmasked", r.unmasked.size()},
          {"survivors", r.state == "published" || r.state == "held_back" ? json(r.namesOf(r.masked)) : json(nullptr)},
          {"seconds_left", r.over() ? 0.0 : std::max(0.0, r.deadline - now())},
          {"generation", r.generation ? json(*r.generation) : json(nullptr)},
          {"reason", r.reason},
          {"created_at", r.createdAt}};
}

void SecAggRounds::persist(const Round& r) {
  const fs::path file = fileOf(r.model.task, r.id);
  fs::create_directories(file.parent_path());
  common::writeFileAtomically(file, view(r).dump(2));
}

void SecAggRounds::abort(Round& r, const std::string& reason) {
  r.state = "aborted";
  r.reason = reason;
  r.server.reset();  // the partial sum and the relayed boxes go with it
  if (log_) log_("model '" + r.model.task + "': secure-aggregation round " + r.id + " aborted: " + reason + "; nothing published");
  try {
    persist(r);
  } catch (const std::exception& e) {
    if (log_) log_("model '" + r.model.task + "': cannot record round " + r.id + ": " + e.what());
  }
}

SecAggAnswer SecAggRounds::join(const ModelRecord& model, const Site& site, int64_t baseGeneration) {
  const auto policy = federation::policyFromJson(model.policy);
  if (!policy.secureAggregation) {
    throw Error(ErrorCode::Conflict, "model '" + model.task + "' does not use secure aggregation (policy 'secure_aggregation' is false): push the update as usual");
  }
  const std::lock_guard lock(mutex_);
  auto& slot = rounds_[model.task];
  if (slot && !slot->over()) advance(*slot);
  const auto answer = [&](const Round& r) {
    const uint32_t id = r.members.at(site.id);
    json j{{"round", r.id},
           {"site_id", id},
           {"site_count", r.config.siteCount},
           {"threshold", r.config.threshold},
           {"length", r.config.length},
           {"base_generation", r.baseGeneration},
           {"range", r.range},
           {"max_sites", r.config.siteCount},
           {"step_seconds", r.stepSeconds},
           {"clip_norm", r.centralClip ? json(*r.centralClip) : json(nullptr)}};
    return SecAggAnswer{200, j.dump(), false};
  };
  const auto requireBase = [&](int64_t roundBase) {
    if (baseGeneration != roundBase) {
      throw Error(ErrorCode::StaleBase, "the secure-aggregation round of model '" + model.task + "' is on generation " +
                                            std::to_string(roundBase) + "; this update starts from generation " +
                                            std::to_string(baseGeneration) + " (pull and train again)");
    }
  };
  if (slot && !slot->over()) {
    Round& r = *slot;
    if (r.members.count(site.id)) return answer(r);
    if (r.step == SecAggStep::Advertise && r.members.size() < r.config.siteCount) {
      requireBase(r.baseGeneration);
      const uint32_t id = static_cast<uint32_t>(r.members.size()) + 1;
      r.members[site.id] = id;
      r.names[id] = site.name;
      if (log_) log_("model '" + model.task + "': site '" + site.name + "' joined secure-aggregation round " + r.id + " as " +
                     std::to_string(id) + " of " + std::to_string(r.config.siteCount));
      return answer(r);
    }
    const json waiting{{"waiting", "secure-aggregation round " + r.id + " is under way (step " + r.state + ", " +
                                       std::to_string(r.members.size()) + " sites) without this site; it joins the next one"},
                       {"round", r.id},
                       {"seconds_left", std::max(0.0, r.deadline - now())}};
    return {202, waiting.dump(), false};
  }
  const auto latest = registry_.latestGeneration(model.id);
  if (!latest) throw Error(ErrorCode::NotFound, "model '" + model.task + "' has no generation");
  requireBase(latest->generation);
  auto r = std::make_unique<Round>();
  r->model = model;
  r->config.round = federation::SecAggConfig::randomRoundId();
  r->config.siteCount = static_cast<uint32_t>(policy.roundSize);
  r->config.threshold = static_cast<uint32_t>(policy.effectiveSecaggThreshold());
  r->config.length = static_cast<uint64_t>(latest->parameters);
  r->config.validate();
  r->id = hexOf(r->config.round);
  r->baseGeneration = latest->generation;
  if (policy.dp.mode == federation::DpMode::Central) {
    // Sites clip their delta to L2 norm C; no coordinate then exceeds C, the codec's range.
    r->centralClip = policy.dp.clipNorm;
    r->range = policy.dp.clipNorm;
    r->noiseMultiplier = policy.dp.noiseMultiplier;
  } else {
    r->range = policy.secaggRange;
  }
  federation::FixedPointCodec(r->range, r->config.siteCount);  // refuses a range it cannot encode
  r->stepSeconds = policy.secaggStepSeconds;
  r->server = std::make_unique<federation::SecAggServer>(r->config);
  r->createdAt = now();
  r->deadline = r->createdAt + r->stepSeconds;
  r->members[site.id] = 1;
  r->names[1] = site.name;
  slot = std::move(r);
  persist(*slot);
  if (log_) log_("model '" + model.task + "': secure-aggregation round " + slot->id + " opened on generation " +
                 std::to_string(slot->baseGeneration) + " (" + std::to_string(slot->config.siteCount) + " sites, threshold " +
                 std::to_string(slot->config.threshold) + "); site '" + site.name + "' joined as 1");
  return answer(*slot);
}

SecAggRounds::Round& SecAggRounds::current(const ModelRecord& model, const std::string& round) {
  requireRoundId(round);
  const auto it = rounds_.find(model.task);
  if (it != rounds_.end() && it->second && it->second->id == round) return *it->second;
  const fs::path file = fileOf(model.task, round);
  std::error_code ec;
  if (fs::exists(file, ec)) {
    const json j = json::parse(common::readFile(file));
    throw Error(ErrorCode::Conflict, "secure-aggregation round " + round + " of model '" + model.task + "' is over (" +
                                         j.value("state", std::string("?")) +
                                         (j.value("reason", std::string()).empty() ? std::string() : ": " + j.value("reason", std::string())) + ")");
  }
  throw Error(ErrorCode::NotFound, "model '" + model.task + "' has no secure-aggregation round " + round);
}

void SecAggRounds::advance(Round& r) {
  while (!r.over()) {
    const bool everyone = r.step == SecAggStep::Advertise
                              ? r.members.size() == r.config.siteCount && r.advertised.size() == r.config.siteCount
                              : r.received().size() == r.expected().size();
    if (!everyone && now() < r.deadline) return;
    const size_t before = r.received().size();
    try {
      switch (r.step) {
        case SecAggStep::Advertise:
          r.keyList = r.server->closeKeys();
          r.step = SecAggStep::Shares;
          break;
        case SecAggStep::Shares:
          r.server->closeShares();
          r.step = SecAggStep::Masked;
          break;
        case SecAggStep::Masked:
          r.survivorList = r.server->closeMaskedInputs();
          r.step = SecAggStep::Unmask;
          break;
        case SecAggStep::Unmask:
          finish(r);
          return;
      }
    } catch (const Error& e) {
      abort(r, std::string(everyone ? "" : "step timed out after " + std::to_string(static_cast<int>(r.stepSeconds)) + " s: ") + e.what());
      return;
    }
    r.state = stepName(r.step);
    r.deadline = now() + r.stepSeconds;
    if (log_) log_("model '" + r.model.task + "': secure-aggregation round " + r.id + ": " + std::to_string(before) + " site(s) in, step " +
                   r.state + " open" + (everyone ? "" : " (the others timed out)"));
    persist(r);
  }
}

void SecAggRounds::finish(Round& r) {
  std::vector<uint32_t> sum = r.server->finish();  // throws (the caller aborts) below t or on a bad share
  const auto count = static_cast<uint32_t>(r.masked.size());
  const federation::FixedPointCodec codec(r.range, r.config.siteCount);
  std::vector<float> mean;
  if (r.centralClip) {
    federation::NoiseSource noise;
    mean = federation::privateMeanOfSecureSum(sum, count, codec, {*r.centralClip, r.noiseMultiplier}, noise);
  } else {
    mean = codec.decodeMean(sum, count);
  }
  sum = {};
  r.server.reset();
  std::set<uint32_t> dropped;
  for (const auto& [id, name] : r.names) {
    if (!r.masked.count(id)) dropped.insert(id);
  }
  const json provenance{{"round", r.id},
                        {"sites", r.namesOf(r.masked)},
                        {"dropped", r.namesOf(dropped)},
                        {"threshold", r.config.threshold},
                        {"central_dp", r.centralClip ? json{{"clip", *r.centralClip}, {"noise_multiplier", r.noiseMultiplier}} : json(nullptr)}};
  try {
    r.generation = mergeLoop_.mergeSecureMean(r.model, r.baseGeneration, mean, provenance);
  } catch (const std::exception& e) {
    abort(r, std::string("merging the unmasked sum failed: ") + e.what());
    return;
  }
  r.state = r.generation ? "published" : "held_back";
  r.reason = r.generation ? "" : "the validation gate held the candidate back (see /v1/models/" + r.model.task + "/generations)";
  if (log_) log_("model '" + r.model.task + "': secure-aggregation round " + r.id + " unmasked the sum of " + std::to_string(count) +
                 " site(s); " + (r.generation ? "generation " + std::to_string(*r.generation) + " published" : r.reason));
  persist(r);
}

SecAggAnswer SecAggRounds::post(const ModelRecord& model, const Site& site, const std::string& round, SecAggStep step,
                                const std::string& message, const std::function<void(int64_t, const std::string&)>& verify) {
  const std::lock_guard lock(mutex_);
  Round& r = current(model, round);
  advance(r);
  if (r.over()) {
    throw Error(ErrorCode::Conflict, "secure-aggregation round " + r.id + " is over (" + r.state + (r.reason.empty() ? "" : ": " + r.reason) + ")");
  }
  const auto member = r.members.find(site.id);
  if (member == r.members.end()) throw Error(ErrorCode::Forbidden, "site '" + site.name + "' is not part of secure-aggregation round " + r.id);
  const uint32_t sender = federation::secAggMessageSender(message);
  if (sender != member->second) {
    throw Error(ErrorCode::Forbidden, "the message claims to come from site " + std::to_string(sender) + " of the round; site '" +
                                          site.name + "' is " + std::to_string(member->second));
  }
  if (step != r.step) {
    throw Error(ErrorCode::Conflict, "secure-aggregation round " + r.id + " is at step " + r.state + "; a " + stepName(step) +
                                         " message is out of order");
  }
  verify(r.baseGeneration, common::sha256Hex(message));
  try {
    switch (step) {
      case SecAggStep::Advertise: r.server->receiveKeys(message); break;
      case SecAggStep::Shares: r.server->receiveShares(message); break;
      case SecAggStep::Masked: r.server->receiveMaskedInput(message); break;
      case SecAggStep::Unmask: r.server->receiveUnmasking(message); break;
    }
  } catch (const Error& e) {
    if (r.server->aborted()) abort(r, e.what());
    throw;
  }
  r.received().insert(sender);
  advance(r);
  return {200, json{{"round", r.id}, {"accepted", stepName(step)}, {"state", r.state}}.dump(), false};
}

SecAggAnswer SecAggRounds::fetch(const ModelRecord& model, const Site& site, const std::string& round, SecAggStep after) {
  const std::lock_guard lock(mutex_);
  Round& r = current(model, round);
  advance(r);
  const auto member = r.members.find(site.id);
  if (member == r.members.end()) throw Error(ErrorCode::Forbidden, "site '" + site.name + "' is not part of secure-aggregation round " + r.id);
  if (r.state == "aborted") throw Error(ErrorCode::Conflict, "secure-aggregation round " + r.id + " was aborted: " + r.reason);
  const uint32_t id = member->second;
  const bool waiting = !r.over() && static_cast<int>(r.step) <= static_cast<int>(after);
  if (waiting) {
    const json j{{"waiting", std::string("step ") + stepName(after) + " is still open"}, {"state", r.state},
                 {"seconds_left", std::max(0.0, r.deadline - now())}};
    return {202, j.dump(), false};
  }
  const auto refuse = [&](const char* what) {
    throw Error(ErrorCode::Conflict, "site '" + site.name + "' is no longer in secure-aggregation round " + r.id + ": it did not " + what +
                                         " before the step closed");
  };
  switch (after) {
    case SecAggStep::Advertise:
      if (!r.advertised.count(id)) refuse("advertise keys");
      return {200, r.keyList, true};
    case SecAggStep::Shares:
      if (!r.shared.count(id)) refuse("send shares");
      if (!r.server) break;
      return {200, r.server->sharesFor(id), true};
    case SecAggStep::Masked:
      if (!r.masked.count(id)) refuse("send its masked input");
      return {200, r.survivorList, true};
    case SecAggStep::Unmask:
      break;
  }
  throw Error(ErrorCode::Conflict, "secure-aggregation round " + r.id + " is over (" + r.state + ")");
}

json SecAggRounds::status(const ModelRecord& model, const std::string& round) {
  const std::lock_guard lock(mutex_);
  const auto it = rounds_.find(model.task);
  const bool inMemory = it != rounds_.end() && it->second && (round.empty() || it->second->id == round);
  if (inMemory) {
    advance(*it->second);
    return view(*it->second);
  }
  if (round.empty()) throw Error(ErrorCode::NotFound, "model '" + model.task + "' has no secure-aggregation round since the server started");
  const fs::path file = fileOf(model.task, round);
  std::error_code ec;
  if (!fs::exists(file, ec)) throw Error(ErrorCode::NotFound, "model '" + model.task + "' has no secure-aggregation round " + round);
  return json::parse(common::readFile(file));
}

}  // namespace tessera::server
