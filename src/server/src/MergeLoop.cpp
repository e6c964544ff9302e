#include "MergeLoop.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <system_error>

#include "tessera/federation/Merge.h"
#include "tessera/federation/CentralDpMerge.h"
#include "tessera/federation/AdaptiveClipping.h"
#include "tessera/federation/ValidationGate.h"
#include "tessera/federation/ServerOptimizer.h"
#include "OptimizerMoments.h"
#include "tessera/server/AdminTasks.h"
#include "tessera/server/HighWater.h"
#include "tessera/server/PrivacyLedger.h"
#include "tessera/model/TaskName.h"
#include "tessera/common/Error.h"

namespace tessera::server {

namespace fs = std::filesystem;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string formatDice(std::optional<double> d) {
  if (!d) return "n/a";
  char text[32];
  std::snprintf(text, sizeof text, "%.4f", *d);
  return text;
}

}  // namespace

MergeLoop::MergeLoop(Registry& registry, BlobStore& blobs, fs::path dataDir, ServerMetrics& metrics,
                     std::function<void(const std::string&)> log, double pollSeconds, ValidationScorer scorer,
                     ValidationScorer normAdaptedScorer)
    : registry_(registry), blobs_(blobs), dataDir_(std::move(dataDir)), metrics_(metrics), scorer_(std::move(scorer)),
      normAdaptedScorer_(std::move(normAdaptedScorer)), log_(std::move(log)),
      pollSeconds_(pollSeconds) {}

MergeLoop::~MergeLoop() { stop(); }

void MergeLoop::start() {
  thread_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      pending_ = false;
      lock.unlock();
      try {
        runDue();  // records and logs its own failures
      } catch (const std::exception& e) {
        if (log_) log_(std::string("merge loop: ") + e.what());
      }
      lock.lock();
      if (!pending_ && !stopping_) {
        wake_.wait_for(lock, std::chrono::duration<double>(pollSeconds_), [this] { return pending_ || stopping_; });
      }
    }
  });
}

void MergeLoop::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void MergeLoop::notify() {
  {
    std::lock_guard lock(mutex_);
    pending_ = true;
  }
  wake_.notify_all();
}

double MergeLoop::backoffSeconds(int failedAttempts) {
  double seconds = 0.5;
  for (int i = 1; i < failedAttempts && seconds < 60; ++i) seconds *= 2;
  return std::min(seconds, 60.0);
}

bool MergeLoop::due(const std::string& key) {
  std::lock_guard lock(failuresMutex_);
  const auto it = failures_.find(key);
  return it == failures_.end() || now() >= it->second.nextAttempt;
}

void MergeLoop::recordFailure(const std::string& key, const std::string& what, const std::exception& e) {
  ++metrics_.mergeFailures;
  const auto* error = dynamic_cast<const Error*>(&e);
  const std::string reason = (error ? std::string(error->codeName()) + ": " : std::string()) + e.what();
  int attempts = 0;
  double wait = 0;
  {
    std::lock_guard lock(failuresMutex_);
    Failure& f = failures_[key];
    if (f.attempts == 0) f.since = now();
    attempts = ++f.attempts;
    wait = backoffSeconds(attempts);
    f.nextAttempt = now() + wait;
    f.reason = reason;
  }
  if (log_) {
    char next[32];
    std::snprintf(next, sizeof next, "%.1f", wait);
    log_(what + " failed (attempt " + std::to_string(attempts) + "): " + reason + "; nothing published, updates stay queued; next attempt in " +
         next + " s");
  }
}

void MergeLoop::recordSuccess(const std::string& key, const std::string& what) {
  int attempts = 0;
  {
    std::lock_guard lock(failuresMutex_);
    const auto it = failures_.find(key);
    if (it == failures_.end()) return;
    attempts = it->second.attempts;
    failures_.erase(it);
  }
  if (log_) log_(what + " works again after " + std::to_string(attempts) + " failed attempt(s)");
}

std::vector<std::string> MergeLoop::problems() const {
  std::lock_guard lock(failuresMutex_);
  std::vector<std::string> out;
  const double t = now();
  for (const auto& [key, f] : failures_) {
    char timing[96];
    std::snprintf(timing, sizeof timing, " (%d failed attempt(s) in %.0f s, next in %.1f s)", f.attempts, t - f.since,
                  std::max(0.0, f.nextAttempt - t));
    out.push_back((key.empty() ? std::string("merge loop") : "merges of model '" + key + "'") + " failing" + timing + ": " + f.reason);
  }
  return out;
}

int MergeLoop::runDue() {
  const std::lock_guard merging(mergeMutex_);
  if (!due("")) return 0;
  std::vector<ModelRecord> models;
  try {
    models = registry_.models({});
    recordSuccess("", "merge loop");
  } catch (const std::exception& e) {
    recordFailure("", "merge loop: listing models", e);
    return 0;
  }
  int built = 0;
  for (const auto& model : models) {
    if (!due(model.task)) continue;
    try {
      built += mergeModel(model);
      recordSuccess(model.task, "model '" + model.task + "': merge");
    } catch (const std::exception& e) {
      recordFailure(model.task, "model '" + model.task + "': merge", e);
    }
  }
  return built;
}

int MergeLoop::mergeModel(const ModelRecord& model) {
  const auto policy = federation::policyFromJson(model.policy);
  int built = 0;
  for (;;) {
    if (awaitingSites(model, policy)) return built;
    auto queued = registry_.queuedUpdates(model.id);
    if (queued.empty()) return built;
    const auto current = registry_.latestGeneration(model.id);
    if (!current) throw Error(ErrorCode::Corrupt, "model '" + model.task + "' has no generation");
    std::vector<UpdateRecord> round;
    if (policy.strategy == federation::Strategy::Dafne) {
      round.push_back(queued.front());  // Dafne merges each upload on arrival, one at a time
    } else if (static_cast<int>(queued.size()) >= policy.roundSize) {
      round.assign(queued.begin(), queued.begin() + policy.roundSize);
    } else if (now() - queued.front().receivedAt >= policy.roundSeconds) {
      round = queued;  // the round timed out: merge what arrived
    } else {
      return built;
    }
    try {
      buildCandidate(model, *current, round);
    } catch (const std::exception& e) {
      std::string what = "merging update(s)";
      for (size_t i = 0; i < round.size(); ++i) what += (i ? ", " : " ") + std::to_string(round[i].id);
      what += " onto generation " + std::to_string(current->generation) + ": ";
      if (const auto* error = dynamic_cast<const Error*>(&e)) throw Error(error->code(), what + e.what());
      const bool io = dynamic_cast<const fs::filesystem_error*>(&e) || dynamic_cast<const std::system_error*>(&e);
      throw Error(io ? ErrorCode::Io : ErrorCode::Internal, what + e.what());
    }
    ++built;
  }
}

std::optional<double> MergeLoop::validationDice(const ModelRecord& model, const GenerationRecord& g,
                                                const std::string& weightsSha, bool adaptNorm) {
  adaptNorm = adaptNorm && normAdaptedScorer_;
  // A task seeded before the task-name rule may have a name no validation folder can have.
  if (!scorer_ || !model::isValidTaskName(model.task)) return std::nullopt;
  const fs::path dir = validationDirectory(dataDir_, model.task);
  std::error_code ec;
  if (!fs::is_directory(dir / "images", ec)) return std::nullopt;
  const auto stamp = fs::last_write_time(dir, ec).time_since_epoch().count();
  const std::string key = weightsSha + ":" + std::to_string(stamp) + (adaptNorm ? ":norm-adapted" : "");
  if (auto it = diceCache_.find(key); it != diceCache_.end()) return it->second;
  const auto set = federation::ValidationSet::load(dir);
  if (set.cases.empty()) return std::nullopt;
  model::Model m = loadGeneration(registry_, blobs_, model.task, g.generation);
  if (weightsSha != g.weightsSha256) {
    m.weights = common::decodeWeights(blobs_.read(weightsSha), "candidate " + weightsSha.substr(0, 12));
  }
  const double dice = adaptNorm ? normAdaptedScorer_(m, set.cases) : scorer_(m, set.cases);
  diceCache_[key] = dice;
  return dice;
}

void MergeLoop::buildCandidate(const ModelRecord& model, const GenerationRecord& current,
                               const std::vector<UpdateRecord>& updates) {
  const auto started = std::chrono::steady_clock::now();
  // Read again: adaptive clipping changes the policy after every round.
  const auto fresh = registry_.modelById(model.id);
  const auto policy = federation::policyFromJson(fresh ? fresh->policy : model.policy);
  // Content-addressed inputs are checked against their names before anything is merged: a
  // damaged blob must never be published under a fresh, valid checksum (hashed once per change
  // of the file, see BlobStore::verify).
  blobs_.verify(current.weightsSha256);
  for (const auto& u : updates) blobs_.verify(u.blobSha256);
  federation::MergeInput input;
  input.current = {blobs_.pathOf(current.weightsSha256), 0, 0};
  input.currentGeneration = current.generation;
  input.policy = policy;
  input.generationWeights = [&](int64_t generation) {
    const auto g = registry_.generation(model.id, generation);
    if (!g) throw Error(ErrorCode::NotFound, "generation " + std::to_string(generation) + " is gone");
    blobs_.verify(g->weightsSha256);
    return common::WeightsLocation{blobs_.pathOf(g->weightsSha256), 0, 0};
  };
  std::vector<int64_t> ids;
  for (const auto& u : updates) {
    federation::UpdateInput in;
    in.id = u.id;
    in.weights = {blobs_.pathOf(u.blobSha256), static_cast<uint64_t>(u.weightsOffset), static_cast<uint64_t>(u.weightsBytes)};
    in.kind = federation::updateKindFromString(u.kind);
    in.baseGeneration = u.baseGeneration;
    in.samples = u.samples;
    input.updates.push_back(in);
    ids.push_back(u.id);
  }
  mergeAndRecord(model, current, input, ids, policy, started, nullptr);
}

std::optional<int64_t> MergeLoop::mergeSecureMean(const ModelRecord& model, int64_t baseGeneration, const std::vector<float>& meanDelta,
                                                  const nlohmann::json& provenance) {
  const std::lock_guard merging(mergeMutex_);
  const auto started = std::chrono::steady_clock::now();
  const auto current = registry_.latestGeneration(model.id);
  if (!current || current->generation != baseGeneration) {
    throw Error(ErrorCode::Conflict, "model '" + model.task + "' moved on from generation " + std::to_string(baseGeneration) +
                                         " during the secure-aggregation round; its sum is not merged");
  }
  const auto fresh = registry_.modelById(model.id);
  auto policy = federation::policyFromJson(fresh ? fresh->policy : model.policy);
  // Central DP's noise was added once to the unmasked mean (privateMeanOfSecureSum): the merge
  // itself must not clip and noise it again as if it were one site's delta.
  policy.dp.mode = federation::DpMode::Off;
  blobs_.verify(current->weightsSha256);
  const common::WeightsLocation currentWeights{blobs_.pathOf(current->weightsSha256), 0, 0};
  const fs::path tmpDir = currentWeights.path.parent_path().parent_path() / "tmp";
  // The mean (an aggregate of the round's survivors, never one site's delta) in the merge's input
  // form: a temporary weights file with the current generation's tensor names and shapes, gone
  // when this function returns.
  common::WeightRecordReader layout(currentWeights, "generation " + std::to_string(current->generation), ErrorCode::Corrupt);
  common::WeightFileWriter meanFile(tmpDir, layout.tensorCount());
  size_t at = 0;
  while (layout.next()) {
    const auto& t = layout.tensor();
    if (at + static_cast<size_t>(t.elements) > meanDelta.size()) break;
    meanFile.beginTensor(t.name, t.shape);
    meanFile.write(meanDelta.data() + at, t.elements);
    at += static_cast<size_t>(t.elements);
  }
  if (at != meanDelta.size() || static_cast<int64_t>(at) != current->parameters) {
    throw Error(ErrorCode::ShapeMismatch, "secure-aggregation sum of " + std::to_string(meanDelta.size()) + " values does not fit generation " +
                                              std::to_string(current->generation) + " (" + std::to_string(current->parameters) + " parameters)");
  }
  meanFile.finishHash();
  federation::MergeInput input;
  input.current = currentWeights;
  input.currentGeneration = current->generation;
  input.policy = policy;
  input.generationWeights = [&](int64_t generation) {
    throw Error(ErrorCode::Internal, "a secure-aggregation mean asked for generation " + std::to_string(generation));
    return currentWeights;
  };
  federation::UpdateInput mean;
  mean.weights = {meanFile.file().temporaryPath(), 0, 0};
  mean.kind = federation::UpdateKind::Delta;
  mean.baseGeneration = current->generation;
  mean.samples = 1;
  input.updates.push_back(mean);
  mergeAndRecord(model, *current, input, {}, policy, started, provenance);
  const auto latest = registry_.latestGeneration(model.id);
  if (latest && latest->generation > baseGeneration) return latest->generation;
  return std::nullopt;
}

void MergeLoop::mergeAndRecord(const ModelRecord& model, const GenerationRecord& current, const federation::MergeInput& input,
                               const std::vector<int64_t>& ids, const federation::MergePolicy& policy,
                               std::chrono::steady_clock::time_point started, const nlohmann::json& provenance) {
  const fs::path tmpDir = blobs_.pathOf(current.weightsSha256).parent_path().parent_path() / "tmp";
  common::WeightFileWriter writer(tmpDir, 0 + [&] {
    common::WeightRecordReader r(input.current, "current");
    return r.tensorCount();
  }());
  federation::MergeOutput merged;
  std::optional<double> nextClip;  // adaptive clipping's C for the next round
  if (policy.dp.mode == federation::DpMode::Central) {
    federation::NoiseSource noise;  // keyed from OS entropy for every round
    const auto& dp = policy.dp;
    const bool adaptive = dp.adaptiveQuantile > 0;
    const double z = adaptive ? federation::AdaptiveClipping::deltaNoiseMultiplier(dp.noiseMultiplier, dp.adaptiveCountNoise)
                              : dp.noiseMultiplier;
    auto central = federation::mergeWithCentralDp(input, {dp.clipNorm, z}, noise, writer);
    merged = std::move(central.merge);
    if (adaptive) {
      federation::AdaptiveClipping clipping(dp.clipNorm, {dp.adaptiveQuantile, dp.adaptiveLearningRate, dp.adaptiveCountNoise});
      nextClip = clipping.update(central.normsBeforeClipping, noise);
    }
  } else if (federation::usesServerOptimizer(policy.strategy)) {
    // The moments are committed before the generation is published (they are named by its
    // weights, so a candidate held back leaves only a file the next round removes).
    const OptimizerMoments moments(dataDir_, model.id);
    const auto state = moments.of(current.weightsSha256);
    moments.keepOnly(current.weightsSha256);
    if (!state && log_) log_("model '" + model.task + "': " + federation::toString(policy.strategy) + ": no moments for generation " +
                             std::to_string(current.generation) + ", starting from m = 0");
    common::WeightFileWriter momentsWriter(moments.directory(), federation::momentTensorCount(input.current));
    merged = federation::mergeWithServerOptimizer(input, state, tmpDir, writer, momentsWriter);
    momentsWriter.file().commit(moments.pathFor(merged.weightsSha256));
  } else {
    merged = federation::mergeUpdates(input, writer);
  }
  const fs::path target = blobs_.pathOf(merged.weightsSha256);
  std::error_code ec;
  const bool existed = fs::exists(target, ec);
  fs::create_directories(target.parent_path());
  writer.file().commit(target);
  try {
    recordCandidate(model, current, ids, merged, policy, started, provenance);
    if (nextClip) {
      updatePolicy(registry_, model.task, {{"dp", {{"clip", *nextClip}}}});
      if (log_) log_("model '" + model.task + "': adaptive clipping: clip " + std::to_string(policy.dp.clipNorm) + " -> " + std::to_string(*nextClip));
    }
  } catch (const std::exception&) {
    // Not published (the registry refused the write, the gate failed): the candidate's blob
    // must not stay behind as an orphan, unless some row names the same content.
    try {
      if (!existed && !registry_.referencedBlobs().count(merged.weightsSha256)) fs::remove(target, ec);
    } catch (const std::exception&) {
      // the registry is unreadable too: the start-up sweep removes it
    }
    throw;
  }
}

// The candidate's blob is stored: score it, then publish it or hold it back (one transaction).
void MergeLoop::recordCandidate(const ModelRecord& model, const GenerationRecord& current, const std::vector<int64_t>& ids,
                                const federation::MergeOutput& merged, const federation::MergePolicy& policy,
                                std::chrono::steady_clock::time_point started, const nlohmann::json& provenance) {
  // FedBN: both scored with statistics from the validation images, as a site would deploy them.
  const bool adaptNorm = policy.strategy == federation::Strategy::FedBN;
  const auto before = validationDice(model, current, current.weightsSha256, adaptNorm);
  const auto after = before ? validationDice(model, current, merged.weightsSha256, adaptNorm) : std::nullopt;
  const auto decision = federation::decide(before, after, 0, policy.validationTolerance);
  nlohmann::json validation = nullptr;
  if (before) {
    validation = {{"dice_before", *before}, {"dice_after", *after}, {"tolerance", policy.validationTolerance}};
    if (adaptNorm && normAdaptedScorer_) validation["norm_statistics"] = "validation images";
  }
  nlohmann::json contributions = nlohmann::json::array();
  for (size_t i = 0; i < ids.size(); ++i) contributions.push_back({{"update", ids[i]}, {"weight", merged.contributions[i]}});
  if (!validation.is_null()) validation["contributions"] = contributions;

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  metrics_.mergeMicroseconds += static_cast<uint64_t>(seconds * 1e6);
  metrics_.mergedParameters += static_cast<uint64_t>(merged.parameters) * ids.size();
  PendingCandidate candidate;
  candidate.baseGeneration = current.generation;
  candidate.weightsSha256 = merged.weightsSha256;
  candidate.weightsBytes = static_cast<int64_t>(merged.weightsBytes);
  candidate.parameters = merged.parameters;
  candidate.strategy = federation::toString(policy.strategy);
  candidate.updateIds = ids;
  candidate.validation = validation.is_null() ? nlohmann::json{{"contributions", contributions}} : validation;
  if (!provenance.is_null()) candidate.validation["secure_aggregation"] = provenance;
  candidate.createdAt = now();
  if (decision.publish && policy.siteQuorum > 0) {
    SiteGate(dataDir_, model.id).hold(candidate);
    if (log_) {
      log_("model '" + model.task + "': candidate on generation " + std::to_string(current.generation) + " (validation Dice " +
           formatDice(before) + " -> " + formatDice(after) + ") waits for " + std::to_string(policy.siteQuorum) +
           " site report(s) at /v1/models/" + model.task + "/candidate");
    }
    return;
  }
  settle(model, candidate, policy, decision.publish, decision.reason,
         "validation Dice " + formatDice(before) + " -> " + formatDice(after));
}

// The site gate: a pending candidate is decided once enough sites reported or its time is up.
bool MergeLoop::awaitingSites(const ModelRecord& model, const federation::MergePolicy& policy) {
  const SiteGate gate(dataDir_, model.id);
  const auto c = gate.pending();
  if (!c) return false;
  const auto current = registry_.latestGeneration(model.id);
  std::error_code ec;
  if (!current || current->generation != c->baseGeneration || !fs::exists(blobs_.pathOf(c->weightsSha256), ec)) {
    // Published before a crash, overtaken by a rollback, or its blob swept at start-up: its
    // updates (if still queued) make a fresh candidate.
    gate.clear();
    if (log_) log_("model '" + model.task + "': pending candidate on generation " + std::to_string(c->baseGeneration) + " dropped (stale)");
    return false;
  }
  const int reported = static_cast<int>(c->reports.size());
  const bool timedOut = now() - c->createdAt >= policy.siteGateSeconds;
  if (policy.siteQuorum > 0 && reported < policy.siteQuorum && !timedOut) return true;
  const auto decision = decideOnSites(c->reports, policy.siteTolerance);
  PendingCandidate decided = *c;
  decided.validation["sites"] = decision.sites;
  decided.validation["site_tolerance"] = policy.siteTolerance;
  // Cleared first: once the generation or the refusal is visible nothing is pending. Should the
  // registry write fail, the updates stay queued and make the candidate again.
  gate.clear();
  settle(model, decided, policy, decision.publish, decision.reason,
         std::to_string(reported) + " site report(s)" + (timedOut && reported < policy.siteQuorum ? " at the timeout" : ""));
  return false;
}

// Publishes the candidate as generation base + 1, or records it as held back (one transaction).
void MergeLoop::settle(const ModelRecord& model, const PendingCandidate& c, const federation::MergePolicy& policy, bool publish,
                       const std::string& reason, const std::string& scores) {
  const std::vector<int64_t>& ids = c.updateIds;
  if (publish) {
    GenerationRecord g;
    g.modelId = model.id;
    g.generation = c.baseGeneration + 1;
    g.parent = c.baseGeneration;
    g.weightsSha256 = c.weightsSha256;
    g.weightsBytes = c.weightsBytes;
    g.parameters = c.parameters;
    g.strategy = c.strategy;
    g.mergedUpdates = ids;
    g.validation = c.validation;
    registry_.publishGeneration(g, ids);
    ++metrics_.generationsPublished;
    try {
      raiseHighWater(dataDir_, HighWaterMark{0, {{model.task, g.generation}}});
    } catch (const std::exception& e) {
      // Published and durable in the registry; only the start-up check loses this generation.
      if (log_) log_("model '" + model.task + "': cannot record generation " + std::to_string(g.generation) + " in " +
                     highWaterFile(dataDir_).string() + ": " + e.what());
    }
    if (log_) {
      log_("model '" + model.task + "': generation " + std::to_string(g.generation) + " published (" + g.strategy + ", " +
           std::to_string(ids.size()) + " update(s), " + scores + ")");
    }
    if (log_ && policy.dp.mode != federation::DpMode::Off) {
      try {
        std::string line = "model '" + model.task + "': privacy spent (epsilon at delta " + std::to_string(policy.dp.delta) + "):";
        for (const auto& s : privacyReport(registry_, model.task)["sites"]) {
          line += " " + s["site"].get<std::string>() + "=" + (s["epsilon"].is_null() ? std::string("inf") : std::to_string(s["epsilon"].get<double>()));
        }
        log_(line);
      } catch (const std::exception& e) {
        log_("model '" + model.task + "': privacy report failed: " + e.what());
      }
    }
  } else {
    RejectedCandidate r;
    r.modelId = model.id;
    r.baseGeneration = c.baseGeneration;
    r.strategy = c.strategy;
    r.updateIds = ids;
    r.validation = c.validation;
    r.reason = reason;
    registry_.rejectCandidate(r, ids);
    ++metrics_.candidatesRejected;
    if (log_) log_("model '" + model.task + "': candidate held back: " + reason);
  }
}

}  // namespace tessera::server
