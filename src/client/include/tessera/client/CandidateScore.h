#pragma once
// A site's half of the site gate (server SiteGate.h): the candidate generation the server holds
// back until sites have scored it is scored here, with the generation it would replace, on the
// site's own held-out corrected cases, and both scores go back to the server. The worst site's
// drop decides whether the candidate is published.

#include <cstdint>
#include <filesystem>
#include <ostream>

#include "tessera/client/ClientConfig.h"

namespace tessera::client {

struct CandidateScore {
  bool pending = false;   // the server holds a candidate for this task
  bool reported = false;  // this site's scores reached the server (now or before)
  int64_t baseGeneration = 0;
  double diceCurrent = 0;
  double diceCandidate = 0;
  int cases = 0;
};

// Held-out cases: DIR/images/NAME.nii.gz with DIR/labels/NAME.nii.gz, never trained on. Under
// fedbn both models are scored with batch-norm statistics of these images, as the site runs them.
CandidateScore scoreCandidate(const ClientConfig& config, const std::filesystem::path& heldOutDir, std::ostream& log);

}  // namespace tessera::client
