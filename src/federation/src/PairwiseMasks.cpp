#include "tessera/federation/PairwiseMasks.h"

#include <cstring>
#include <string>

#include <sodium.h>

#include "tessera/common/Error.h"

namespace tessera::federation {

using tessera::Error;
using tessera::ErrorCode;

namespace {
void ensureSodium() {
  if (sodium_init() < 0) throw Error(ErrorCode::Internal, "libsodium failed to initialise");
}
}  // namespace

X25519KeyPair X25519KeyPair::generate() {
  ensureSodium();
  X25519KeyPair pair;
  randombytes_buf(pair.secretKey.data(), pair.secretKey.size());
  crypto_scalarmult_base(pair.publicKey.data(), pair.secretKey.data());
  return pair;
}

Secret32 x25519PublicOf(const Secret32& secretKey) {
  ensureSodium();
  Secret32 pub{};
  crypto_scalarmult_base(pub.data(), secretKey.data());
  return pub;
}

Secret32 agreePairSeed(const Secret32& ownSecret, const Secret32& peerPublic, const RoundId& round, uint32_t siteA,
                       uint32_t siteB, PairKeyPurpose purpose) {
  ensureSodium();
  uint8_t shared[crypto_scalarmult_BYTES];
  if (crypto_scalarmult(shared, ownSecret.data(), peerPublic.data()) != 0)
    throw Error(ErrorCode::BadRequest, "secure aggregation: a peer public key of sites " + std::to_string(siteA) + "/" +
                                           std::to_string(siteB) + " is a low-order point");
  const uint32_t low = std::min(siteA, siteB), high = std::max(siteA, siteB);
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, 32);
  static const char kContext[] = "tessera secagg pair mask v1";
  crypto_generichash_update(&state, reinterpret_cast<const uint8_t*>(kContext), sizeof kContext);
  const auto purposeByte = static_cast<uint8_t>(purpose);
  crypto_generichash_update(&state, &purposeByte, 1);
  crypto_generichash_update(&state, round.data(), round.size());
  uint8_t ids[8];
  std::memcpy(ids, &low, 4);
  std::memcpy(ids + 4, &high, 4);
  crypto_generichash_update(&state, ids, sizeof ids);
  crypto_generichash_update(&state, shared, sizeof shared);
  Secret32 seed{};
  crypto_generichash_final(&state, seed.data(), seed.size());
  sodium_memzero(shared, sizeof shared);
  return seed;
}

void applyMask(std::vector<uint32_t>& values, const Secret32& seed, int sign) {
  ensureSodium();
  // Expand in blocks that stay in the L1/L2 cache instead of one buffer as large as the model.
  constexpr size_t kBlockValues = 16384;
  static_assert(kBlockValues * 4 % 64 == 0, "ChaCha20 blocks must line up between chunks");
  std::vector<uint32_t> stream(kBlockValues);
  const std::vector<uint8_t> zeros(kBlockValues * 4, 0);
  uint8_t nonce[crypto_stream_chacha20_NONCEBYTES] = {0};
  for (size_t start = 0; start < values.size(); start += kBlockValues) {
    const size_t count = std::min(kBlockValues, values.size() - start);
    const uint64_t blockCounter = start * 4 / 64;
    crypto_stream_chacha20_xor_ic(reinterpret_cast<uint8_t*>(stream.data()),
                                  zeros.data(), count * 4,
                                  nonce, blockCounter, seed.data());
    uint32_t* out = values.data() + start;
    if (sign > 0)
      for (size_t i = 0; i < count; ++i) out[i] += stream[i];
    else
      for (size_t i = 0; i < count; ++i) out[i] -= stream[i];
  }
}

}  // namespace tessera::federation
