#pragma once
// The masks of secure aggregation: a pseudo-random expansion of a 32-byte seed into ring elements,
// and the pairwise seeds two sites agree on by X25519 without ever sending them.
//
// PRG: the ChaCha20 keystream (libsodium crypto_stream_chacha20, nonce 0) under the seed, read as
// little-endian uint32 values. Every seed is used for exactly one expansion per round: pairwise
// seeds are bound to the round id, and self-mask seeds are fresh random bytes, so a zero nonce
// never meets a reused key.

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "tessera/federation/SecretSharing.h"

namespace tessera::federation {

using RoundId = std::array<uint8_t, 16>;

struct X25519KeyPair {
  Secret32 publicKey{};
  Secret32 secretKey{};
  static X25519KeyPair generate();
};

// X25519(ownSecret, peerPublic) hashed (BLAKE2b) with the purpose, the round id and the two site
// ids in ascending order, so both ends derive the same key and no key is reused across rounds,
// pairs or purposes (mask seed, share encryption). Throws Error(BadRequest) for a low-order peer
// key (the agreement would be all zeros).
enum class PairKeyPurpose : uint8_t { MaskSeed = 1, ShareEncryption = 2 };
Secret32 agreePairSeed(const Secret32& ownSecret, const Secret32& peerPublic, const RoundId& round, uint32_t siteA,
                       uint32_t siteB, PairKeyPurpose purpose = PairKeyPurpose::MaskSeed);

// Derives the public key of an X25519 secret key (used to check a reconstructed secret key).
Secret32 x25519PublicOf(const Secret32& secretKey);

// values[i] += sign · PRG(seed)[i] mod 2^32, sign = +1 or −1.
void applyMask(std::vector<uint32_t>& values, const Secret32& seed, int sign);

}  // namespace tessera::federation
