#include "MergeLoop.h"

#include <chrono>
#include <cstdio>

#include "tessera/federation/Merge.h"
#include "tessera/federation/ValidationGate.h"
#include "tessera/server/AdminTasks.h"
#include "tessera/server/HighWater.h"
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
                     std::function<void(const std::string&)> log, double pollSeconds, ValidationScorer scorer)
    : registry_(registry), blobs_(blobs), dataDir_(std::move(dataDir)), metrics_(metrics), scorer_(std::move(scorer)), log_(std::move(log)),
      pollSeconds_(pollSeconds) {}

MergeLoop::~MergeLoop() { stop(); }

void MergeLoop::start() {
  thread_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      pending_ = false;
      lock.unlock();
      try {
        runDue();
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

int MergeLoop::runDue() {
  int built = 0;
  for (const auto& model : registry_.models({})) built += mergeModel(model);
  return built;
}

int MergeLoop::mergeModel(const ModelRecord& model) {
  const auto policy = federation::policyFromJson(model.policy);
  int built = 0;
  for (;;) {
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
    buildCandidate(model, *current, round);
    ++built;
  }
}

std::optional<double> MergeLoop::validationDice(const ModelRecord& model, const GenerationRecord& g,
                                                const std::string& weightsSha) {
  // A task seeded before the task-name rule may have a name no validation folder can have.
  if (!scorer_ || !model::isValidTaskName(model.task)) return std::nullopt;
  const fs::path dir = validationDirectory(dataDir_, model.task);
  std::error_code ec;
  if (!fs::is_directory(dir / "images", ec)) return std::nullopt;
  const auto stamp = fs::last_write_time(dir, ec).time_since_epoch().count();
  const std::string key = weightsSha + ":" + std::to_string(stamp);
  if (auto it = diceCache_.find(key); it != diceCache_.end()) return it->second;
  const auto set = federation::ValidationSet::load(dir);
  if (set.cases.empty()) return std::nullopt;
  model::Model m = loadGeneration(registry_, blobs_, model.task, g.generation);
  if (weightsSha != g.weightsSha256) {
    m.weights = common::decodeWeights(blobs_.read(weightsSha), "candidate " + weightsSha.substr(0, 12));
  }
  const double dice = scorer_(m, set.cases);
  diceCache_[key] = dice;
  return dice;
}

void MergeLoop::buildCandidate(const ModelRecord& model, const GenerationRecord& current,
                               const std::vector<UpdateRecord>& updates) {
  const auto started = std::chrono::steady_clock::now();
  const auto policy = federation::policyFromJson(model.policy);
  federation::MergeInput input;
  input.current = {blobs_.pathOf(current.weightsSha256), 0, 0};
  input.currentGeneration = current.generation;
  input.policy = policy;
  input.generationWeights = [&](int64_t generation) {
    const auto g = registry_.generation(model.id, generation);
    if (!g) throw Error(ErrorCode::NotFound, "generation " + std::to_string(generation) + " is gone");
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

  const fs::path tmpDir = blobs_.pathOf(current.weightsSha256).parent_path().parent_path() / "tmp";
  common::WeightFileWriter writer(tmpDir, 0 + [&] {
    common::WeightRecordReader r(input.current, "current");
    return r.tensorCount();
  }());
  const auto merged = federation::mergeUpdates(input, writer);
  const fs::path target = blobs_.pathOf(merged.weightsSha256);
  fs::create_directories(target.parent_path());
  writer.file().commit(target);

  const auto before = validationDice(model, current, current.weightsSha256);
  const auto after = before ? validationDice(model, current, merged.weightsSha256) : std::nullopt;
  const auto decision = federation::decide(before, after, 0, policy.validationTolerance);
  nlohmann::json validation = nullptr;
  if (before) {
    validation = {{"dice_before", *before}, {"dice_after", *after}, {"tolerance", policy.validationTolerance}};
  }
  nlohmann::json contributions = nlohmann::json::array();
  for (size_t i = 0; i < ids.size(); ++i) contributions.push_back({{"update", ids[i]}, {"weight", merged.contributions[i]}});
  if (!validation.is_null()) validation["contributions"] = contributions;

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  metrics_.mergeMicroseconds += static_cast<uint64_t>(seconds * 1e6);
  metrics_.mergedParameters += static_cast<uint64_t>(merged.parameters) * ids.size();
  if (decision.publish) {
    GenerationRecord g;
    g.modelId = model.id;
    g.generation = current.generation + 1;
    g.parent = current.generation;
    g.weightsSha256 = merged.weightsSha256;
    g.weightsBytes = static_cast<int64_t>(merged.weightsBytes);
    g.parameters = merged.parameters;
    g.strategy = federation::toString(policy.strategy);
    g.mergedUpdates = ids;
    g.validation = validation.is_null() ? nlohmann::json{{"contributions", contributions}} : validation;
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
           std::to_string(ids.size()) + " update(s), validation Dice " + formatDice(before) + " -> " + formatDice(after) + ")");
    }
  } else {
    RejectedCandidate c;
    c.modelId = model.id;
    c.baseGeneration = current.generation;
    c.strategy = federation::toString(policy.strategy);
    c.updateIds = ids;
    c.validation = validation;
    c.reason = decision.reason;
    registry_.rejectCandidate(c, ids);
    ++metrics_.candidatesRejected;
    if (log_) log_("model '" + model.task + "': candidate held back: " + decision.reason);
  }
}

}  // namespace tessera::server
