#pragma once
// Background thread that turns queued updates into generations, following each model's policy.
// Crash safety comes from the order of effects: the candidate's blob is written and synced first,
// then ONE registry transaction publishes the generation and marks its updates merged. A crash
// before that commit leaves the updates queued; the next start merges them again.

#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "ServerMetrics.h"
#include "tessera/server/BlobStore.h"
#include "tessera/server/FederationServer.h"
#include "tessera/server/Registry.h"

namespace tessera::server {

class MergeLoop {
 public:
  MergeLoop(Registry& registry, BlobStore& blobs, std::filesystem::path dataDir, ServerMetrics& metrics,
            std::function<void(const std::string&)> log, double pollSeconds, ValidationScorer scorer);
  ~MergeLoop();

  void start();
  void stop();
  void notify();
  // Merges everything that is due now; returns the number of candidates built.
  int runDue();

 private:
  int mergeModel(const ModelRecord& model);
  void buildCandidate(const ModelRecord& model, const GenerationRecord& current, const std::vector<UpdateRecord>& updates);
  std::optional<double> validationDice(const ModelRecord& model, const GenerationRecord& g, const std::string& weightsSha);

  Registry& registry_;
  BlobStore& blobs_;
  std::filesystem::path dataDir_;
  ServerMetrics& metrics_;
  ValidationScorer scorer_;
  std::function<void(const std::string&)> log_;
  double pollSeconds_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool pending_ = false;
  std::thread thread_;
  std::map<std::string, double> diceCache_;  // weights sha → validation Dice
};

}  // namespace tessera::server
