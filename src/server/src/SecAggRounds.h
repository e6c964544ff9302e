#pragma once
// Secure-aggregation rounds over HTTP (federation/SecureAggregation.h drives the cryptography;
// this class drives the steps, the deadlines and the publication). One round at a time per task:
//   join → advertise-keys → keys → shares → my-shares → masked-input → survivors → unmask → status
// The first site to join opens a round of `round_size` sites on the latest generation. A step
// closes when every site still in the round has sent its message, or when `secagg_step_seconds`
// passed; then it goes on with the sites that did if at least t did, and aborts otherwise. When
// the sum is unmasked, the mean of the survivors' deltas is merged like a fedavg round
// (MergeLoop::mergeSecureMean): gated and signed like every generation.
//
// What the server holds: public keys, encrypted share boxes it cannot open, commitments, and the
// running ring sum of masked inputs (one masked input alone is uniform noise to the server). No
// single update is ever stored, on disk or in memory, and none is logged. Round state lives in
// memory; DATA/secagg/<task>/<round>.json records each round's progress (atomically), so a round a
// crashed or restarted server left open is marked aborted at start-up and nothing is published.

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "tessera/server/Registry.h"

namespace tessera::server {

class MergeLoop;

enum class SecAggStep { Advertise, Shares, Masked, Unmask };

// What a route answers: 200 with the step's bytes or JSON, 202 with JSON while the step waits for
// other sites.
struct SecAggAnswer {
  int status = 200;
  std::string body;
  bool binary = false;
};

class SecAggRounds {
 public:
  SecAggRounds(Registry& registry, std::filesystem::path dataDir, MergeLoop& mergeLoop,
               std::function<void(const std::string&)> log);
  ~SecAggRounds();

  // Start-up: every round a previous process left open is recorded as aborted.
  void abortInterrupted();

  // A place for `site` in the task's open round (the same one on a repeat), or 202 while a round
  // it is not part of is under way. Error(StaleBase) when the site trained on another generation
  // than the round's.
  SecAggAnswer join(const ModelRecord& model, const Site& site, int64_t baseGeneration);
  // A protocol message of `site` for `step` of round `round` (hex). `verify(base, sha256)` checks
  // the request's signature against the round's base generation before the message is taken.
  // Error(Conflict) (409) for a step out of order, a round that is over or not this site's.
  SecAggAnswer post(const ModelRecord& model, const Site& site, const std::string& round, SecAggStep step,
                    const std::string& message, const std::function<void(int64_t, const std::string&)>& verify);
  // The relay a site fetches after `step` closed: the key list (after Advertise), its share boxes
  // (after Shares), the survivor list (after Masked). 202 while the step is open.
  SecAggAnswer fetch(const ModelRecord& model, const Site& site, const std::string& round, SecAggStep after);
  // The round's progress (`round` empty: the task's newest round); NotFound when there is none.
  nlohmann::json status(const ModelRecord& model, const std::string& round);

 private:
  struct Round;
  Round& current(const ModelRecord& model, const std::string& round);
  void advance(Round& r);
  void finish(Round& r);
  void abort(Round& r, const std::string& reason);
  void persist(const Round& r);
  nlohmann::json view(const Round& r) const;
  std::filesystem::path fileOf(const std::string& task, const std::string& round) const;

  Registry& registry_;
  std::filesystem::path dataDir_;
  MergeLoop& mergeLoop_;
  std::function<void(const std::string&)> log_;
  std::mutex mutex_;
  std::map<std::string, std::unique_ptr<Round>> rounds_;  // task → its newest round
};

}  // namespace tessera::server
