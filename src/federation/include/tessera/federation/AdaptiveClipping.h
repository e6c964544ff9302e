#pragma once
// Adaptive clipping by quantile tracking (Andrew, Thakkar, McMahan, Ramaswamy 2019): instead of
// guessing C, the server moves it each round towards the γ-quantile of the sites' update norms.
// Each site reports one bit, b = [‖Δ‖ ≤ C]; the server takes the noisy fraction
//   b̄ = (Σ b + N(0, σ_b²)) / m
// and updates geometrically, C ← C · exp(−η (b̄ − γ)). The bits are private too: the count gets
// its own noise σ_b, and the noise multiplier of the deltas is raised so the pair costs what z
// alone would: z_Δ = (z⁻² − (2σ_b)⁻²)^(−1/2) (their Theorem 1).

#include <vector>

#include "tessera/federation/GaussianMechanism.h"

namespace tessera::federation {

struct AdaptiveClippingOptions {
  double targetQuantile = 0.5;  // γ: fraction of updates that should stay unclipped
  double learningRate = 0.2;    // η of the geometric update
  double countNoiseStd = 0;     // σ_b: noise on the number of unclipped updates (paper: m/20)

  void validate() const;  // throws Error(BadRequest) naming the field
};

class AdaptiveClipping {
 public:
  AdaptiveClipping(double initialClip, AdaptiveClippingOptions options);

  double clipNorm() const { return clip_; }
  // One round: the norms of the round's updates before clipping (only whether each is ≤ C is
  // used). Returns the new C.
  double update(const std::vector<double>& norms, NoiseSource& noise);

  // The noise multiplier to apply to the deltas so that deltas and bits together have the
  // privacy of noise multiplier z alone. Throws BadRequest when σ_b is too small for z
  // (2σ_b ≤ z leaves no budget for the deltas).
  static double deltaNoiseMultiplier(double z, double countNoiseStd);

 private:
  double clip_;
  AdaptiveClippingOptions options_;
};

}  // namespace tessera::federation
