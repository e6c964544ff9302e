#pragma once
// A push under local differential privacy: the delta is clipped to L2 norm C and Gaussian noise
// N(0, (z·C)²) is added on this machine, before anything leaves it (federation/GaussianMechanism.h);
// the update's header declares (C, z) so the server can account the release.
//
// The noised update is written next to the training record before it is sent and resent as it is
// on every retry: a second draw of noise on the same training would be a second release, which
// the server (seeing one idempotency key) would not account.

#include <optional>
#include <ostream>

#include <nlohmann/json.hpp>

#include "tessera/client/ClientConfig.h"
#include "tessera/federation/GaussianMechanism.h"

namespace tessera::client {

// push() with local DP when `dp` is set; push(config, log) is pushWithPrivacy(config, log, {}).
nlohmann::json pushWithPrivacy(const ClientConfig& config, std::ostream& log,
                               const std::optional<federation::DpParameters>& dp);

}  // namespace tessera::client
