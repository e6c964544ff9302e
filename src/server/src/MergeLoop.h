#pragma once
// Background thread that turns queued updates into generations, following each model's policy.
// Crash safety comes from the order of effects: the candidate's blob is written and synced first,
// then ONE registry transaction publishes the generation and marks its updates merged. A crash
// before that commit leaves the updates queued; the next start merges them again.

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <mutex>
#include <string>
#include <vector>
#include <thread>

#include "ServerMetrics.h"
#include "SiteGate.h"
#include "tessera/federation/Merge.h"
#include "tessera/federation/MergePolicy.h"
#include "tessera/server/BlobStore.h"
#include "tessera/server/FederationServer.h"
#include "tessera/server/Registry.h"

namespace tessera::server {

class MergeLoop {
 public:
  MergeLoop(Registry& registry, BlobStore& blobs, std::filesystem::path dataDir, ServerMetrics& metrics,
            std::function<void(const std::string&)> log, double pollSeconds, ValidationScorer scorer,
            ValidationScorer normAdaptedScorer = {});
  ~MergeLoop();

  void start();
  void stop();
  void notify();
  // Merges everything that is due now; returns the number of candidates built. A model whose
  // merge failed is skipped until its back-off has passed (0.5 s doubling to 60 s), so a merge
  // that cannot write (full disk, damaged input) neither spins nor floods the log.
  int runDue();
  // A secure-aggregation round's unmasked mean delta (SecAggRounds.h) merged onto generation
  // `baseGeneration` like a round of one update, then gated and published as usual; `provenance`
  // goes into the record's validation field. The published generation, or nullopt when the gate
  // held the candidate back. Error(Conflict) when the model moved on meanwhile.
  std::optional<int64_t> mergeSecureMean(const ModelRecord& model, int64_t baseGeneration, const std::vector<float>& meanDelta,
                                         const nlohmann::json& provenance);
  // One line per model whose merges are failing now (empty: all well), for /healthz.
  std::vector<std::string> problems() const;

  static double backoffSeconds(int failedAttempts);

 private:
  // The current run of failures of one model's merges ("" for the loop itself).
  struct Failure {
    int attempts = 0;
    double since = 0;
    double nextAttempt = 0;
    std::string reason;
  };
  bool due(const std::string& key);
  void recordFailure(const std::string& key, const std::string& what, const std::exception& e);
  void recordSuccess(const std::string& key, const std::string& what);

  int mergeModel(const ModelRecord& model);
  void buildCandidate(const ModelRecord& model, const GenerationRecord& current, const std::vector<UpdateRecord>& updates);
  void mergeAndRecord(const ModelRecord& model, const GenerationRecord& current, const federation::MergeInput& input,
                      const std::vector<int64_t>& ids, const federation::MergePolicy& policy,
                      std::chrono::steady_clock::time_point started, const nlohmann::json& provenance);
  void recordCandidate(const ModelRecord& model, const GenerationRecord& current, const std::vector<int64_t>& ids,
                       const federation::MergeOutput& merged, const federation::MergePolicy& policy,
                       std::chrono::steady_clock::time_point started, const nlohmann::json& provenance);
  // `adaptNorm`: score with normAdaptedScorer_ (FedBN) when there is one.
  bool awaitingSites(const ModelRecord& model, const federation::MergePolicy& policy);
  void settle(const ModelRecord& model, const PendingCandidate& c, const federation::MergePolicy& policy, bool publish,
              const std::string& reason, const std::string& scores);
  std::optional<double> validationDice(const ModelRecord& model, const GenerationRecord& g, const std::string& weightsSha,
                                       bool adaptNorm = false);

  Registry& registry_;
  BlobStore& blobs_;
  std::filesystem::path dataDir_;
  ServerMetrics& metrics_;
  ValidationScorer scorer_;
  ValidationScorer normAdaptedScorer_;
  std::function<void(const std::string&)> log_;
  double pollSeconds_;
  std::mutex mutex_;
  // Held by every merge: the loop's rounds and secure-aggregation rounds (HTTP threads) share
  // the registry writes, the tmp folder and diceCache_.
  std::mutex mergeMutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool pending_ = false;
  std::thread thread_;
  std::map<std::string, double> diceCache_;  // weights sha → validation Dice
  mutable std::mutex failuresMutex_;
  std::map<std::string, Failure> failures_;
};

}  // namespace tessera::server
