#pragma once
// Shamir t-of-n secret sharing of 32-byte secrets over the prime field GF(2^61 − 1), for secure
// aggregation's dropout recovery. A secret is cut into five 7-byte limbs (each < 2^56 < p), and
// every limb is the constant term of its own random polynomial of degree t − 1; site x (1..n)
// holds the five evaluations at x. Any t shares give the secret back by Lagrange interpolation
// at 0; t − 1 shares are uniformly distributed whatever the secret (information-theoretic).
// The polynomial coefficients come from libsodium's randombytes (OS entropy).

#include <array>
#include <cstdint>
#include <vector>

namespace tessera::federation {

using Secret32 = std::array<uint8_t, 32>;

struct SecretShare {
  static constexpr int kLimbs = 5;
  uint32_t x = 0;  // the holder's evaluation point, 1..n (never 0: that is the secret)
  std::array<uint64_t, kLimbs> y{};
};

// Throws Error(BadRequest) unless 1 ≤ threshold ≤ shareCount.
std::vector<SecretShare> shareSecret(const Secret32& secret, uint32_t threshold, uint32_t shareCount);

// Interpolates from exactly the first `threshold` shares and checks every further share against
// that polynomial: a share that does not fit (a site lying about what it holds) is refused with
// Error(Corrupt). Fewer than `threshold` shares, duplicate x or values outside the field:
// Error(BadRequest). A limb that does not decode to 7 bytes: Error(Corrupt).
Secret32 reconstructSecret(const std::vector<SecretShare>& shares, uint32_t threshold);

}  // namespace tessera::federation
