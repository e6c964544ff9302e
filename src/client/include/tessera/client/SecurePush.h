#pragma once
// A push under secure aggregation (federation/SecureAggregation.h; the server's side is
// /v1/models/T/secagg/…): the site's delta leaves this machine only as a fixed-point vector plus
// masks that cancel in the sum of the round, so the server learns the sum of the round's updates
// and never this one. `tessera client push` takes this path by itself when the task's policy says
// "secure_aggregation": true.
//
// The site stays in the round until it ends: join (a place and the round's parameters), advertise
// two X25519 keys, fetch everyone's keys, send Shamir shares of its secrets in boxes only their
// recipients can open, fetch the boxes sent to it, send its masked input, fetch the survivors,
// answer the unmasking, then wait for the round's outcome. Every message is signed with the site
// key when home/site-key exists (as an upload is). A step that does not close within the round's
// step time (plus a margin) ends the push with an error naming the step; nothing is recorded as
// pushed then, so the next push takes part in a new round with the same training.

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

#include <nlohmann/json.hpp>

#include "tessera/client/ClientConfig.h"
#include "tessera/common/WeightRecords.h"
#include "tessera/federation/GaussianMechanism.h"

namespace tessera::client {

struct SecureRoundOptions {
  double pollSeconds = 0.25;
  // The longest wait for one step to close; 0: the round's step_seconds + 30.
  double stepWaitSeconds = 0;
  // The longest wait for a place in a round while another one is under way.
  double joinWaitSeconds = 900;
  // Leave after sending this step's message ("advertise-keys", "shares", "masked-input"), as a
  // site that goes offline would: for tests and simulated dropouts. Empty: take part to the end.
  std::string leaveAfter;
};

// Takes part in a secure-aggregation round of `task` with `delta` (the update's weights, in the
// model's tensor order) trained on `baseGeneration`. Returns the round's final status
// ({"round", "state": "published"|"held_back", "generation", "survivors", …}), or {"round",
// "left_after"} with options.leaveAfter. Error(Rejected) when the round was aborted, Error(Server)
// when a step did not close in time.
nlohmann::json takePartInSecureRound(const ClientConfig& config, const std::string& task, int64_t baseGeneration,
                                     const common::WeightSet& delta, std::ostream& log, const SecureRoundOptions& options = {});

// True when the server's policy for config.task asks for secure aggregation.
bool serverWantsSecureAggregation(const ClientConfig& config);

// push() through a secure-aggregation round: the site's last training (refused when already
// pushed), recorded as pushed with the round and generation once the round published.
nlohmann::json pushSecurely(const ClientConfig& config, std::ostream& log, const SecureRoundOptions& options = {});

}  // namespace tessera::client
