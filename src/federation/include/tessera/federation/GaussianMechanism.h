#pragma once
// Client-level differential privacy for model updates (McMahan et al. 2018, "DP-FedAvg"): a
// site's delta is clipped to L2 norm C and Gaussian noise N(0, (z·C)²) is added to every
// coordinate, on the site before upload (local mode), or once to the average of m clipped
// deltas on the server with std z·C/m (central mode). The RDP accountant then prices each
// release at noise multiplier z.
//
// Batch-norm running statistics (names ending in running_mean / running_var /
// num_batches_tracked) are DROPPED from a private update: their delta is set to 0 and they are not
// part of the norm. They are averages of the site's activations, so they leak its data like any
// weight, and they cannot take noise at the weights' scale (a variance pushed below zero breaks
// inference). The global model keeps the base generation's statistics; sites that need their own
// keep them locally, as FedBN does. Learnt normalisation scale and shift are ordinary parameters:
// clipped and noised.
//
// Noise: ChaCha20 keystream (libsodium) keyed with 256 bits from the operating system
// (randombytes_buf: getrandom / /dev/urandom), turned into normals by Box–Muller on 53-bit
// uniforms. A keystream under a secret random key is computationally indistinguishable from
// uniform bits, so the noise is as unpredictable to a server or an eavesdropper as fresh OS
// entropy, at a fraction of its cost; a non-cryptographic generator (mt19937) would let whoever
// sees enough outputs predict the rest and subtract the noise. Not addressed: floating-point
// side channels of sampling (Mironov 2012; Jin et al. 2022), which matter for tiny updates near
// the float resolution, not for deltas dominated by noise of std z·C.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tessera/common/WeightRecords.h"

namespace tessera::federation {

struct DpParameters {
  double clipNorm = 0;         // C: L2 bound of one site's delta
  double noiseMultiplier = 0;  // z: noise std in units of C

  void validate() const;  // throws Error(BadRequest) naming the field
};

// Batch-norm running statistics, which a private update drops (see above).
bool isRunningStatistic(const std::string& tensorName);

// L2 norm over every tensor that a private update keeps (running statistics excluded).
double privateNorm(const common::WeightSet& delta);

// Zeroes the running statistics and scales the rest by min(1, C/‖Δ‖), so ‖Δ‖ ≤ C afterwards
// (= C when it was larger). Returns the norm before clipping.
double clipToNorm(common::WeightSet& delta, double clipNorm);

// Gaussian noise from a cryptographically keyed stream. Without a seed the key is 256 bits of
// OS entropy; a seed makes the stream reproducible and is for tests only.
class NoiseSource {
 public:
  explicit NoiseSource(std::optional<uint64_t> testSeed = std::nullopt);
  double uniform();   // in (0, 1), 53 random bits
  double gaussian();  // N(0, 1)
  // Adds N(0, std²) to every value of every tensor except running statistics.
  void addNoise(common::WeightSet& weights, double std);

 private:
  void refill();
  uint8_t key_[32];
  uint64_t blockCounter_ = 0;
  std::vector<uint64_t> buffer_;
  size_t next_ = 0;
  std::optional<double> spareGaussian_;
};

// Local mode, on the site: clip Δ to C, add N(0, (zC)²). Returns the norm before clipping.
double privatizeLocally(common::WeightSet& delta, const DpParameters& dp, NoiseSource& noise);

// Central mode, on the server: `average` is the mean of `count` deltas each already clipped to C;
// adds N(0, (zC/count)²) per coordinate.
void addCentralNoise(common::WeightSet& average, const DpParameters& dp, int64_t count, NoiseSource& noise);

}  // namespace tessera::federation
