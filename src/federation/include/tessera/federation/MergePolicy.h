#pragma once
// How the server turns updates into a new generation; chosen per model by the admin.

#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace tessera::federation {

// Median: the coordinate-wise median of the round's deltas (the mean of the two middle values for
// an even count), robust to fewer than half of the sites sending anything at all.
// FedAdam, FedYogi: fedavg's mean delta taken as a pseudo-gradient for an adaptive server step
// (ServerOptimizer.h).
enum class Strategy { Dafne, FedAvg, FedBN, TrimmedMean, Median, FedAdam, FedYogi };
std::string toString(Strategy strategy);
Strategy strategyFromString(const std::string& text);  // throws std::invalid_argument naming it

enum class StalenessMode { Delta, Downweight };

// Client-level differential privacy (see GaussianMechanism.h). Local: each site clips and noises
// its delta before upload and says so in the update's header. Central: the server clips each
// delta to `clipNorm`, averages the round's deltas with equal weights (sample counts would let
// one site's share, and so its sensitivity, grow) and adds noise of std z·C/m once.
enum class DpMode { Off, Local, Central };
std::string toString(DpMode mode);

struct DpPolicy {
  DpMode mode = DpMode::Off;
  double clipNorm = 1.0;         // C
  double noiseMultiplier = 1.0;  // z (central mode; a local update declares its own)
  // Each site's budget for this model: an update that would take its ε (RDP accountant, every
  // accepted update one step with q = 1: sites are not sampled, so no amplification is claimed)
  // above epsilonMax at delta is refused. 0: no budget, ε is still reported.
  double epsilonMax = 0;
  double delta = 1e-5;
  // Adaptive clipping in central mode (AdaptiveClipping.h): 0 = off; otherwise after every round
  // the server moves `clipNorm` towards this quantile of the round's update norms and stores it
  // here. The unclipped count gets noise `adaptiveCountNoise` (σ_b > noise_multiplier / 2), and
  // the deltas the larger multiplier that keeps the pair at `noise_multiplier` (their Theorem 1).
  double adaptiveQuantile = 0;
  double adaptiveLearningRate = 0.2;
  double adaptiveCountNoise = 0;
};

struct MergePolicy {
  Strategy strategy = Strategy::FedAvg;
  int roundSize = 3;            // fedavg-family: a round closes at K queued updates …
  double roundSeconds = 600;    // … or when its oldest update has waited T seconds
  double dafneWeight = 0.5;     // dafne: merged = w·current + (1−w)·uploaded
  double trimFraction = 0.2;    // trimmed-mean: fraction dropped at each end per coordinate
  StalenessMode staleness = StalenessMode::Delta;
  double stalenessDecay = 0.5;  // downweight: delta scaled by decay^(current − base)
  int maxStaleness = 10;        // updates from older generations are refused
  double validationTolerance = 0.02;  // a candidate may lower validation Dice by at most this
  uint64_t maxUpdateBytes = uint64_t{1} << 30;
  double maxDeltaNormRatio = 2.0;     // ‖Δ‖ / ‖base weights‖ above this is refused
  // An update claiming more training samples than this is refused: one site must not be able to
  // outweigh (or, with 1e308, overflow) everybody else's weight in a sample-weighted merge.
  double maxSamples = 1e6;
  // Queued updates one site may have per model at a time (a round counts each site once).
  int updatesPerSitePerRound = 1;
  // fedavg / fedbn: x ← x + server_step·Δ for the round's mean delta Δ (running statistics are
  // averaged, not stepped). 1 is plain FedAvg. The mean of K sites' deltas moves the model about
  // as far as one site's training did, where one model trained on the pooled data takes K times
  // the steps; a step near K recovers that pace (Reddi et al. 2021's FedAvg with server learning
  // rate η_g; Charles et al. 2021). JSON "server_step".
  double serverStep = 1.0;
  // fedadam / fedyogi (ServerOptimizer.h). JSON: "server_lr", "beta1", "beta2", "tau".
  double serverLearningRate = 0.01;  // η
  double beta1 = 0.9;
  double beta2 = 0.99;
  double tau = 1e-3;  // adaptivity: larger τ makes the step more like fedavg's
  // FedProx (Li et al. 2020): sites add (μ/2)·‖w − w_global‖² to their training loss, keeping a
  // site's weights near the generation it started from on non-IID data. 0: off. JSON "prox_mu";
  // sites read it from the policy the server hands out with the model.
  double proxMu = 0;
  // The site gate (server SiteGate.h): with siteQuorum > 0 a candidate that passed the server's
  // gate waits until that many sites reported its Dice on their own held-out cases (or
  // siteGateSeconds passed) and is held back when one site's Dice drops by more than
  // siteTolerance. JSON "site_quorum", "site_tolerance", "site_gate_seconds".
  int siteQuorum = 0;
  double siteTolerance = 0.02;
  double siteGateSeconds = 3600;
  DpPolicy dp;  // JSON: "dp": {"mode", "clip", "noise_multiplier", "epsilon_max", "delta"}
  // Secure aggregation (SecureAggregation.h, run by the server's /v1/models/T/secagg/… routes):
  // sites send masked fixed-point deltas and the server learns only the sum of a round of
  // `roundSize` sites. `secaggThreshold` t: survivors every step needs (0: ⌈2n/3⌉); a step waits at
  // most `secaggStepSeconds` for missing sites; `secaggRange` R: each coordinate is clipped to
  // ±R before encoding (central DP uses dp.clip instead). JSON "secure_aggregation",
  // "secagg_threshold", "secagg_step_seconds", "secagg_range".
  bool secureAggregation = false;
  int secaggThreshold = 0;
  double secaggStepSeconds = 120;
  double secaggRange = 1.0;
  int effectiveSecaggThreshold() const;

  // Throws std::invalid_argument naming the field, or Error(BadRequest) naming a strategy that
  // cannot run under secure aggregation.
  void validate() const;
};

// Dafne's published server merges every upload on arrival and does not gate on validation, so
// its default policy only records the scores (tolerance = 1: never blocks). FedBN's does the same:
// its global model holds no site's normalisation statistics, so the server's score of it does not
// describe what any site runs.
MergePolicy defaultPolicyFor(Strategy strategy);

nlohmann::json toJson(const MergePolicy& policy);
// Applies the fields present in `patch` on top of `base`; throws std::invalid_argument naming an
// unknown field or a bad value.
MergePolicy policyFromJson(const nlohmann::json& patch, const MergePolicy& base = {});

}  // namespace tessera::federation
