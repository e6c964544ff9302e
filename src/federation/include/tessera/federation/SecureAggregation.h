#pragma once
// Secure aggregation (Bonawitz et al. 2017, "Practical Secure Aggregation for Privacy-Preserving
// Machine Learning", the semi-honest protocol with dropout recovery): the server learns the sum of
// a round's fixed-point updates (FixedPoint.h) and nothing about any one site's update.
//
// Steps (each a byte-string message, so any transport can carry them):
//  1. advertise keys: every site sends two X25519 public keys, c (share encryption) and s (masks).
//     The server closes the step with at least t sites (U1) and broadcasts the list.
//  2. share keys: site i draws a self-mask seed b_i, Shamir-shares b_i and its s secret key
//     t-of-|U1| (SecretSharing.h) and sends each peer j its two shares, encrypted and
//     authenticated (XChaCha20-Poly1305) under a key agreed from c_i and c_j, bound to the round,
//     sender and recipient. It also sends the server BLAKE2b(b_i), a commitment that reveals
//     nothing about a 256-bit random seed. Sites that did so form U2; each gets its ciphertexts.
//  3. masked input: y_i = x_i + PRG(b_i) + Σ_{j∈U2, j>i} PRG(s_ij) − Σ_{j∈U2, j<i} PRG(s_ij)
//     mod 2^32 (PairwiseMasks.h). Senders form U3; the server adds the y_i as they arrive.
//  4. unmasking: every site in U3 gets U3 and reveals, for each peer j of U2, its share of b_j if
//     j ∈ U3 and its share of j's s secret key if j dropped, never both. From t answers the server
//     rebuilds the b_j of survivors and the s keys of dropped sites, removes PRG(b_j) and the
//     pairwise masks the dropped sites left behind, and holds Σ_{i∈U3} x_i exactly.
//
// Guarantees and their limits. The pairwise masks cancel only in the sum; a single y_i is x_i
// plus a ChaCha20 keystream under a key the server does not have, i.e. uniform on the ring to
// anyone without that key. A site's b_i and s key are revealed only from t shares, and a site
// answers the unmasking step once, so the server cannot get both for the same site from honest
// sites; t > n/2 (enforced) means no two disjoint groups of sites can each reach t, which is what
// stops a server from telling half the sites "j dropped" and the other half "j survived".
// Every reconstructed secret is checked: a b against its commitment, an s key against the public
// key the site advertised, and each share beyond the first t against their polynomial. A site that
// lies about a share is therefore detected and the round is aborted without output (which shares
// were wrong cannot always be told; the error names the site whose secret failed). A share changed
// on the way (by the relaying server or the network) fails authentication at the recipient, which
// refuses the round. Duplicate or replayed messages (same sender and step, or another round's id)
// are refused with ErrorCode::Replay; out-of-order ones with Conflict.
// Not covered: an actively malicious server that lies about U3 to different sites beyond what the
// threshold stops (Bonawitz's consistency-check round with signatures); sites proving their input is
// in range (a site can still send any ring element: the sum's plausibility is the validation gate's
// job, not per-update checks, which secure aggregation rules out by design).

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tessera/common/Error.h"
#include "tessera/federation/PairwiseMasks.h"
#include "tessera/federation/SecretSharing.h"

namespace tessera::federation {

struct SecAggConfig {
  RoundId round{};          // fresh per round (random): binds every key, mask and message to it
  uint32_t siteCount = 0;   // n: sites are numbered 1..n
  uint32_t threshold = 0;   // t: survivors needed at every step; n/2 < t ≤ n
  uint64_t length = 0;      // ring elements per update

  void validate() const;  // Error(BadRequest) naming the field
  static RoundId randomRoundId();
};

class SecAggClient {
 public:
  SecAggClient(const SecAggConfig& config, uint32_t siteId);
  ~SecAggClient();

  std::string advertiseKeys();
  std::string shareKeys(const std::string& keyList);
  // `sharesForMe`: the server's step-2 relay; `encodedInput`: FixedPointCodec::encode of the update.
  std::string maskedInput(const std::string& sharesForMe, const std::vector<uint32_t>& encodedInput);
  std::string unmask(const std::string& survivorList);

  uint32_t siteId() const { return site_; }

 private:
  enum class Step { Advertise, Share, Mask, Unmask, Done };
  void expect(Step step, const char* what) const;

  SecAggConfig config_;
  uint32_t site_;
  Step step_ = Step::Advertise;
  X25519KeyPair encryptionKeys_, maskKeys_;
  Secret32 selfMaskSeed_{};
  struct PeerKeys {
    Secret32 encryption, mask;
  };
  std::map<uint32_t, PeerKeys> peers_;  // U1, self included
  struct HeldShares {
    SecretShare maskKey, selfMask;
  };
  std::map<uint32_t, HeldShares> held_;  // U2: shares received from each (own ones included)
};

class SecAggServer {
 public:
  explicit SecAggServer(const SecAggConfig& config);

  void receiveKeys(const std::string& message);
  std::string closeKeys();  // the key list for every site of U1
  void receiveShares(const std::string& message);
  void closeShares();
  std::string sharesFor(uint32_t site) const;  // after closeShares, for each site of U2
  void receiveMaskedInput(const std::string& message);
  std::string closeMaskedInputs();  // the survivor list U3
  void receiveUnmasking(const std::string& message);
  // Σ_{i∈U3} x_i mod 2^32. Throws (and aborts the round) when fewer than t sites answered or a
  // reconstructed secret fails its check.
  std::vector<uint32_t> finish();

  const std::vector<uint32_t>& survivors() const { return maskedSenders_; }  // U3
  bool aborted() const { return aborted_; }

 private:
  enum class Step { Keys, Shares, Masked, Unmask, Done };
  void expect(Step step, const char* what) const;
  [[noreturn]] void abort(tessera::ErrorCode code, const std::string& message);

  SecAggConfig config_;
  Step step_ = Step::Keys;
  bool aborted_ = false;
  std::map<uint32_t, std::array<Secret32, 2>> keys_;  // U1: encryption, mask public keys
  std::map<uint32_t, Secret32> commitments_;           // U2: BLAKE2b(b_i)
  std::map<uint32_t, std::map<uint32_t, std::string>> ciphertextsTo_;  // recipient → sender → box
  std::vector<uint32_t> shareSenders_;                                 // U2
  std::vector<uint32_t> maskedSenders_;                                // U3
  std::vector<uint32_t> sum_;
  struct Revealed {
    std::map<uint32_t, SecretShare> selfMask, maskKey;  // about site → share
  };
  std::map<uint32_t, Revealed> unmaskings_;  // responder → what it revealed
};

// The sender id a message claims (its header), so that a transport can check that an
// authenticated site sends only as its own protocol id. Error(BadRequest) for a non-message.
uint32_t secAggMessageSender(const std::string& message);

// One whole round in one process, for tests and the bench. `inputOf(site)` is called once per
// site that reaches step 3. Sites in `dropBeforeShares` vanish after advertising keys, those in
// `dropBeforeMaskedInput` after sharing keys, those in `dropBeforeUnmasking` after sending their
// masked input. CPU times are thread CPU seconds around each party's own calls.
struct SecAggDropouts {
  std::set<uint32_t> beforeShares, beforeMaskedInput, beforeUnmasking;
};
struct SecAggRoundResult {
  std::vector<uint32_t> sum;
  std::vector<uint32_t> survivors;
  double siteCpuSecondsMax = 0, siteCpuSecondsMean = 0, serverCpuSeconds = 0;
  uint64_t bytesUpPerSite = 0, bytesDownPerSite = 0;  // mean over sites that ran the whole round
  uint64_t serverBytesIn = 0, serverBytesOut = 0;
};
SecAggRoundResult runSecureAggregationRound(const SecAggConfig& config,
                                            const std::function<std::vector<uint32_t>(uint32_t site)>& inputOf,
                                            const SecAggDropouts& dropouts = {});

}  // namespace tessera::federation
