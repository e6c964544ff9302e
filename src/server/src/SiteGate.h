#pragma once
// The gate that sees every site. The server's own validation set is one scanner; a candidate can
// help it and still hurt a site whose scans look different. With `site_quorum` > 0 in the
// policy, a candidate that passed the server's gate is not published at once but held pending:
//
//   GET  /v1/models/T/candidate         the pending candidate (base generation, weights SHA-256,
//                                       reports so far, whether this site reported)
//   GET  /v1/models/T/candidate/model   its weights as a .tsm (generation = base + 1)
//   POST /v1/models/T/candidate/dice    {"weights_sha256", "dice_candidate", "dice_current",
//                                        "cases"}: the site's mean Dice of the candidate and of
//                                       the current generation on its own held-out corrected cases
//
// The merge loop decides once `site_quorum` sites reported, or `site_gate_seconds` after the
// candidate was built (then on whatever arrived; with no report it is published, the server's
// gate having passed it): held back when some site's Dice drops by more than `site_tolerance`
// (the worst site decides, not the mean), published otherwise with the reports in its
// validation record. While a candidate is pending no other is built for that model; its updates
// stay queued, so a crash (or a failed registry write when it is decided) loses at most the
// reports: the candidate is rebuilt from the same updates and sites report again.
//
// Stored in DATA/site-gate/<model id>.json, written atomically; one mutex serialises the HTTP
// threads and the merge loop.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tessera::server {

struct SiteReport {
  double diceCandidate = 0;
  double diceCurrent = 0;
  int64_t cases = 0;
};

struct PendingCandidate {
  int64_t baseGeneration = 0;
  std::string weightsSha256;
  int64_t weightsBytes = 0;
  int64_t parameters = 0;
  std::string strategy;
  std::vector<int64_t> updateIds;
  nlohmann::json validation;  // the server gate's record, published with the generation
  double createdAt = 0;       // wall-clock seconds
  std::map<std::string, SiteReport> reports;  // by site name
};

struct SiteGateDecision {
  bool publish = true;
  std::string reason;  // why it was held back
  nlohmann::json sites = nlohmann::json::array();  // per-site record for the generation
};

// The worst site decides: held back when some site's candidate Dice is below its current-
// generation Dice by more than `tolerance`.
SiteGateDecision decideOnSites(const std::map<std::string, SiteReport>& reports, double tolerance);

class SiteGate {
 public:
  SiteGate(const std::filesystem::path& dataDir, int64_t modelId);
  std::optional<PendingCandidate> pending() const;
  void hold(const PendingCandidate& c) const;
  void clear() const;
  // Records `site`'s report on the candidate with `weightsSha256`: Error(NotFound) when none is
  // pending, Error(Conflict) when the pending one has other weights (the site scored an old one).
  PendingCandidate report(const std::string& site, const std::string& weightsSha256, const SiteReport& r) const;

 private:
  std::filesystem::path file_;
};

nlohmann::json toJson(const PendingCandidate& c);
PendingCandidate pendingFromJson(const nlohmann::json& j);

}  // namespace tessera::server
