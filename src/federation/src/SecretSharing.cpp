#include "tessera/federation/SecretSharing.h"

#include <set>
#include <string>

#include <sodium.h>

#include "tessera/common/Error.h"

namespace tessera::federation {

using tessera::Error;
using tessera::ErrorCode;

namespace {

constexpr uint64_t kPrime = (uint64_t{1} << 61) - 1;
constexpr int kLimbBytes = 7;

uint64_t reduce(unsigned __int128 v) {
  // 2^61 ≡ 1 (mod p): fold the high bits onto the low ones.
  uint64_t r = static_cast<uint64_t>(v & kPrime) + static_cast<uint64_t>(v >> 61);
  r = (r & kPrime) + (r >> 61);
  return r >= kPrime ? r - kPrime : r;
}
uint64_t add(uint64_t a, uint64_t b) { return reduce(static_cast<unsigned __int128>(a) + b); }
uint64_t sub(uint64_t a, uint64_t b) { return add(a, kPrime - b); }
uint64_t mul(uint64_t a, uint64_t b) { return reduce(static_cast<unsigned __int128>(a) * b); }
uint64_t power(uint64_t base, uint64_t exponent) {
  uint64_t result = 1;
  while (exponent) {
    if (exponent & 1) result = mul(result, base);
    base = mul(base, base);
    exponent >>= 1;
  }
  return result;
}
uint64_t inverse(uint64_t a) { return power(a, kPrime - 2); }

uint64_t randomFieldElement() {
  for (;;) {
    uint64_t v;
    randombytes_buf(&v, sizeof v);
    v &= kPrime;  // 61 bits; reject the single value p itself
    if (v < kPrime) return v;
  }
}

// Lagrange basis for the points `xs`, evaluated at any x: L_i(x) = Π_{j≠i}(x − x_j) / Π_{j≠i}(x_i − x_j).
// The denominators are inverted once, so checking many extra shares costs multiplications only.
class LagrangeBasis {
 public:
  explicit LagrangeBasis(std::vector<uint64_t> xs) : xs_(std::move(xs)), denominatorInverse_(xs_.size()) {
    for (size_t i = 0; i < xs_.size(); ++i) {
      uint64_t denominator = 1;
      for (size_t j = 0; j < xs_.size(); ++j)
        if (i != j) denominator = mul(denominator, sub(xs_[i], xs_[j]));
      denominatorInverse_[i] = inverse(denominator);
    }
  }
  std::vector<uint64_t> at(uint64_t x) const {
    std::vector<uint64_t> basis(xs_.size());
    for (size_t i = 0; i < xs_.size(); ++i) {
      uint64_t numerator = 1;
      for (size_t j = 0; j < xs_.size(); ++j)
        if (i != j) numerator = mul(numerator, sub(x, xs_[j]));
      basis[i] = mul(numerator, denominatorInverse_[i]);
    }
    return basis;
  }

 private:
  std::vector<uint64_t> xs_;
  std::vector<uint64_t> denominatorInverse_;
};

}  // namespace

std::vector<SecretShare> shareSecret(const Secret32& secret, uint32_t threshold, uint32_t shareCount) {
  if (threshold < 1 || threshold > shareCount)
    throw Error(ErrorCode::BadRequest, "secret sharing: threshold " + std::to_string(threshold) + " not in 1.." +
                                           std::to_string(shareCount));
  std::vector<SecretShare> shares(shareCount);
  for (uint32_t i = 0; i < shareCount; ++i) shares[i].x = i + 1;
  for (int limb = 0; limb < SecretShare::kLimbs; ++limb) {
    uint64_t constant = 0;
    for (int b = 0; b < kLimbBytes; ++b) {
      const int index = limb * kLimbBytes + b;
      if (index < 32) constant |= uint64_t{secret[index]} << (8 * b);
    }
    std::vector<uint64_t> coefficients{constant};
    for (uint32_t k = 1; k < threshold; ++k) coefficients.push_back(randomFieldElement());
    for (auto& share : shares) {
      uint64_t value = 0;  // Horner
      for (size_t k = coefficients.size(); k-- > 0;) value = add(mul(value, share.x), coefficients[k]);
      share.y[limb] = value;
    }
    sodium_memzero(coefficients.data(), coefficients.size() * sizeof(uint64_t));
  }
  return shares;
}

Secret32 reconstructSecret(const std::vector<SecretShare>& shares, uint32_t threshold) {
  if (threshold < 1 || shares.size() < threshold)
    throw Error(ErrorCode::BadRequest, "secret sharing: " + std::to_string(shares.size()) +
                                           " shares, threshold " + std::to_string(threshold));
  std::set<uint32_t> seen;
  for (const auto& s : shares) {
    if (s.x == 0 || !seen.insert(s.x).second)
      throw Error(ErrorCode::BadRequest, "secret sharing: share point " + std::to_string(s.x) + " is 0 or repeated");
    for (uint64_t y : s.y)
      if (y >= kPrime) throw Error(ErrorCode::BadRequest, "secret sharing: share value outside the field");
  }
  std::vector<uint64_t> xs;
  for (uint32_t i = 0; i < threshold; ++i) xs.push_back(shares[i].x);
  const LagrangeBasis lagrange(xs);
  const auto basis = lagrange.at(0);
  std::vector<std::vector<uint64_t>> extraBases;
  for (size_t extra = threshold; extra < shares.size(); ++extra) extraBases.push_back(lagrange.at(shares[extra].x));

  Secret32 secret{};
  for (int limb = 0; limb < SecretShare::kLimbs; ++limb) {
    uint64_t constant = 0;
    for (uint32_t i = 0; i < threshold; ++i) constant = add(constant, mul(basis[i], shares[i].y[limb]));
    // Every further share must lie on the same polynomial.
    for (size_t extra = threshold; extra < shares.size(); ++extra) {
      const auto& at = extraBases[extra - threshold];
      uint64_t value = 0;
      for (uint32_t i = 0; i < threshold; ++i) value = add(value, mul(at[i], shares[i].y[limb]));
      if (value != shares[extra].y[limb])
        throw Error(ErrorCode::Corrupt, "secret sharing: the share at point " + std::to_string(shares[extra].x) +
                                            " does not fit the others (a holder changed it)");
    }
    if (constant >> (8 * kLimbBytes))
      throw Error(ErrorCode::Corrupt, "secret sharing: reconstructed limb out of range (inconsistent shares)");
    for (int b = 0; b < kLimbBytes; ++b) {
      const int index = limb * kLimbBytes + b;
      const auto byte = static_cast<uint8_t>(constant >> (8 * b));
      if (index < 32) secret[index] = byte;
      else if (byte != 0)
        throw Error(ErrorCode::Corrupt, "secret sharing: reconstructed padding not zero (inconsistent shares)");
    }
  }
  return secret;
}

}  // namespace tessera::federation
