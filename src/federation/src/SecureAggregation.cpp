#include "tessera/federation/SecureAggregation.h"

#include <algorithm>
#include <ctime>
#include <memory>

#include <sodium.h>

#include "SecAggWire.h"
#include "tessera/common/Error.h"
#include "tessera/federation/FixedPoint.h"

namespace tessera::federation {

using tessera::Error;
using tessera::ErrorCode;

namespace {

constexpr size_t kShareBytes = 4 + 8 * SecretShare::kLimbs;
constexpr size_t kSharePlainBytes = 8 + 2 * kShareBytes;

Secret32 commitmentOf(const Secret32& selfMaskSeed) {
  static const char kContext[] = "tessera secagg self-mask commitment v1";
  Secret32 out{};
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, out.size());
  crypto_generichash_update(&state, reinterpret_cast<const uint8_t*>(kContext), sizeof kContext);
  crypto_generichash_update(&state, selfMaskSeed.data(), selfMaskSeed.size());
  crypto_generichash_final(&state, out.data(), out.size());
  return out;
}

// Associated data of a share box: the round, sender and recipient, so a box cannot be moved to
// another round or pair without failing authentication.
std::string boxContext(const RoundId& round, uint32_t sender, uint32_t recipient) {
  std::string ad(reinterpret_cast<const char*>(round.data()), round.size());
  ad.append(reinterpret_cast<const char*>(&sender), 4);
  ad.append(reinterpret_cast<const char*>(&recipient), 4);
  return ad;
}

std::string site(uint32_t id) { return "site " + std::to_string(id); }

double threadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
}

}  // namespace

void SecAggConfig::validate() const {
  if (siteCount < 2)
    throw Error(ErrorCode::BadRequest, "secure aggregation: site count " + std::to_string(siteCount) +
                                           ": needs at least 2 sites (one site's sum is its update)");
  if (threshold <= siteCount / 2 || threshold > siteCount)
    throw Error(ErrorCode::BadRequest, "secure aggregation: threshold " + std::to_string(threshold) + " must be in " +
                                           std::to_string(siteCount / 2 + 1) + ".." + std::to_string(siteCount) +
                                           " (more than half the sites)");
  if (length == 0) throw Error(ErrorCode::BadRequest, "secure aggregation: update length 0");
}

RoundId SecAggConfig::randomRoundId() {
  if (sodium_init() < 0) throw Error(ErrorCode::Internal, "libsodium failed to initialise");
  RoundId id;
  randombytes_buf(id.data(), id.size());
  return id;
}

// ---------------------------------------------------------------------------------------------
// Site

SecAggClient::SecAggClient(const SecAggConfig& config, uint32_t siteId) : config_(config), site_(siteId) {
  config_.validate();
  if (siteId < 1 || siteId > config.siteCount)
    throw Error(ErrorCode::BadRequest, "secure aggregation: site id " + std::to_string(siteId) + " not in 1.." +
                                           std::to_string(config.siteCount));
  encryptionKeys_ = X25519KeyPair::generate();
  maskKeys_ = X25519KeyPair::generate();
  randombytes_buf(selfMaskSeed_.data(), selfMaskSeed_.size());
}

SecAggClient::~SecAggClient() {
  sodium_memzero(encryptionKeys_.secretKey.data(), 32);
  sodium_memzero(maskKeys_.secretKey.data(), 32);
  sodium_memzero(selfMaskSeed_.data(), 32);
}

void SecAggClient::expect(Step step, const char* what) const {
  if (step_ != step)
    throw Error(ErrorCode::Conflict, "secure aggregation " + site(site_) + ": " + what +
                                         " out of order (each step runs once, in order)");
}

std::string SecAggClient::advertiseKeys() {
  expect(Step::Advertise, "advertise keys");
  wire::Writer w(wire::Step::Keys, config_.round, site_);
  w.key(encryptionKeys_.publicKey);
  w.key(maskKeys_.publicKey);
  step_ = Step::Share;
  return w.take();
}

std::string SecAggClient::shareKeys(const std::string& keyList) {
  expect(Step::Share, "share keys");
  wire::Reader r(keyList, wire::Step::KeyList, config_.round, "secure aggregation key list");
  const uint64_t count = r.count(68);
  std::set<Secret32> distinct;
  for (uint64_t k = 0; k < count; ++k) {
    const uint32_t id = r.u32();
    PeerKeys keys{r.key(), r.key()};
    if (id < 1 || id > config_.siteCount || peers_.count(id))
      throw Error(ErrorCode::BadRequest, "secure aggregation key list: bad or repeated " + site(id));
    // Bonawitz: all advertised keys distinct, so nobody can pose with another site's key.
    if (!distinct.insert(keys.encryption).second || !distinct.insert(keys.mask).second)
      throw Error(ErrorCode::BadRequest, "secure aggregation key list: " + site(id) + " repeats a key");
    peers_[id] = keys;
  }
  r.end();
  const auto self = peers_.find(site_);
  if (self == peers_.end() || self->second.encryption != encryptionKeys_.publicKey ||
      self->second.mask != maskKeys_.publicKey)
    throw Error(ErrorCode::BadRequest, "secure aggregation key list: " + site(site_) + "'s own keys missing or changed");
  if (peers_.size() < config_.threshold)
    throw Error(ErrorCode::Rejected, "secure aggregation: " + std::to_string(peers_.size()) + " sites, threshold " +
                                         std::to_string(config_.threshold) + ": round aborted");

  const auto maskKeyShares = shareSecret(maskKeys_.secretKey, config_.threshold, config_.siteCount);
  const auto selfMaskShares = shareSecret(selfMaskSeed_, config_.threshold, config_.siteCount);
  wire::Writer w(wire::Step::Shares, config_.round, site_);
  w.key(commitmentOf(selfMaskSeed_));
  w.u32(static_cast<uint32_t>(peers_.size() - 1));
  for (const auto& [peer, keys] : peers_) {
    if (peer == site_) {
      held_[site_] = {maskKeyShares[site_ - 1], selfMaskShares[site_ - 1]};
      continue;
    }
    wire::Writer plain(wire::Step::Shares, config_.round, site_);
    plain.u32(site_);
    plain.u32(peer);
    plain.share(maskKeyShares[peer - 1]);
    plain.share(selfMaskShares[peer - 1]);
    std::string message = plain.take().substr(25);
    const Secret32 boxKey = agreePairSeed(encryptionKeys_.secretKey, keys.encryption, config_.round, site_, peer,
                                          PairKeyPurpose::ShareEncryption);
    const std::string ad = boxContext(config_.round, site_, peer);
    std::string box(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + message.size() +
                        crypto_aead_xchacha20poly1305_ietf_ABYTES,
                    '\0');
    auto* nonce = reinterpret_cast<uint8_t*>(box.data());
    randombytes_buf(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    crypto_aead_xchacha20poly1305_ietf_encrypt(nonce + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, nullptr,
                                               reinterpret_cast<const uint8_t*>(message.data()), message.size(),
                                               reinterpret_cast<const uint8_t*>(ad.data()), ad.size(), nullptr, nonce,
                                               boxKey.data());
    sodium_memzero(message.data(), message.size());
    w.u32(peer);
    w.blob(box);
  }
  step_ = Step::Mask;
  return w.take();
}

std::string SecAggClient::maskedInput(const std::string& sharesForMe, const std::vector<uint32_t>& encodedInput) {
  expect(Step::Mask, "masked input");
  if (encodedInput.size() != config_.length)
    throw Error(ErrorCode::ShapeMismatch, "secure aggregation " + site(site_) + ": update of " +
                                              std::to_string(encodedInput.size()) + " values, round expects " +
                                              std::to_string(config_.length));
  wire::Reader r(sharesForMe, wire::Step::SharesRelay, config_.round, "secure aggregation share relay");
  const uint64_t count = r.count(8);
  for (uint64_t k = 0; k < count; ++k) {
    const uint32_t sender = r.u32();
    const std::string box = r.blob();
    const auto peer = peers_.find(sender);
    if (peer == peers_.end() || sender == site_ || held_.count(sender))
      throw Error(ErrorCode::Replay, "secure aggregation " + site(site_) + ": shares from " + site(sender) +
                                         " unknown or repeated");
    constexpr size_t overhead = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES;
    std::string plain(kSharePlainBytes, '\0');
    const Secret32 boxKey = agreePairSeed(encryptionKeys_.secretKey, peer->second.encryption, config_.round, site_,
                                          sender, PairKeyPurpose::ShareEncryption);
    const std::string ad = boxContext(config_.round, sender, site_);
    const auto* nonce = reinterpret_cast<const uint8_t*>(box.data());
    if (box.size() != overhead + kSharePlainBytes ||
        crypto_aead_xchacha20poly1305_ietf_decrypt(
            reinterpret_cast<uint8_t*>(plain.data()), nullptr, nullptr,
            nonce + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, box.size() - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
            reinterpret_cast<const uint8_t*>(ad.data()), ad.size(), nonce, boxKey.data()) != 0)
      throw Error(ErrorCode::Corrupt, "secure aggregation " + site(site_) + ": the shares from " + site(sender) +
                                          " fail authentication (changed on the way); round refused");
    // Reuse the reader for the plaintext's fields behind a synthetic header.
    wire::Writer header(wire::Step::Shares, config_.round, sender);
    std::string framed = header.take() + plain;
    wire::Reader p(framed, wire::Step::Shares, config_.round, "secure aggregation share box");
    const uint32_t from = p.u32(), to = p.u32();
    if (from != sender || to != site_)
      throw Error(ErrorCode::Corrupt, "secure aggregation " + site(site_) + ": share box addressed wrongly");
    HeldShares held{p.share(), p.share()};
    if (held.maskKey.x != site_ || held.selfMask.x != site_)
      throw Error(ErrorCode::Corrupt, "secure aggregation " + site(site_) + ": share box of another point");
    held_[sender] = held;
    sodium_memzero(plain.data(), plain.size());
    sodium_memzero(framed.data(), framed.size());
  }
  r.end();
  if (held_.size() < config_.threshold)
    throw Error(ErrorCode::Rejected, "secure aggregation: " + std::to_string(held_.size()) +
                                         " sites shared keys, threshold " + std::to_string(config_.threshold) +
                                         ": round aborted");

  std::vector<uint32_t> masked = encodedInput;
  applyMask(masked, selfMaskSeed_, +1);
  for (const auto& [peer, shares] : held_) {
    if (peer == site_) continue;
    const Secret32 seed = agreePairSeed(maskKeys_.secretKey, peers_.at(peer).mask, config_.round, site_, peer);
    applyMask(masked, seed, peer > site_ ? +1 : -1);
  }
  wire::Writer w(wire::Step::Masked, config_.round, site_);
  w.u64(masked.size());
  w.raw(masked.data(), masked.size() * 4);
  step_ = Step::Unmask;
  return w.take();
}

std::string SecAggClient::unmask(const std::string& survivorList) {
  expect(Step::Unmask, "unmasking");
  wire::Reader r(survivorList, wire::Step::Survivors, config_.round, "secure aggregation survivor list");
  const uint64_t count = r.count(4);
  std::set<uint32_t> survivors;
  for (uint64_t k = 0; k < count; ++k) {
    const uint32_t id = r.u32();
    if (!held_.count(id) || !survivors.insert(id).second)
      throw Error(ErrorCode::BadRequest, "secure aggregation survivor list: " + site(id) +
                                             " did not share keys or is repeated");
  }
  r.end();
  if (!survivors.count(site_))
    throw Error(ErrorCode::BadRequest, "secure aggregation survivor list: leaves out " + site(site_) + " itself");
  if (survivors.size() < config_.threshold)
    throw Error(ErrorCode::Rejected, "secure aggregation: " + std::to_string(survivors.size()) +
                                         " survivors, threshold " + std::to_string(config_.threshold) +
                                         ": round aborted");
  // Answered once only: a second list (claiming other dropouts) must not get the other share.
  step_ = Step::Done;
  wire::Writer w(wire::Step::Unmask, config_.round, site_);
  w.u32(static_cast<uint32_t>(held_.size()));
  for (const auto& [about, shares] : held_) {
    const bool survived = survivors.count(about) > 0;
    w.u32(about);
    w.u8(survived ? 0 : 1);
    w.share(survived ? shares.selfMask : shares.maskKey);
  }
  return w.take();
}

// ---------------------------------------------------------------------------------------------
// Server

SecAggServer::SecAggServer(const SecAggConfig& config) : config_(config) { config_.validate(); }

void SecAggServer::expect(Step step, const char* what) const {
  if (aborted_) throw Error(ErrorCode::Rejected, std::string("secure aggregation: ") + what + ": the round was aborted");
  if (step_ != step) throw Error(ErrorCode::Conflict, std::string("secure aggregation: ") + what + " out of order");
}

void SecAggServer::abort(ErrorCode code, const std::string& message) {
  aborted_ = true;
  sum_.clear();
  sum_.shrink_to_fit();
  throw Error(code, "secure aggregation: " + message + "; round aborted without output");
}

void SecAggServer::receiveKeys(const std::string& message) {
  expect(Step::Keys, "advertised keys");
  wire::Reader r(message, wire::Step::Keys, config_.round, "secure aggregation keys");
  const uint32_t sender = r.sender();
  std::array<Secret32, 2> keys{r.key(), r.key()};
  r.end();
  if (sender < 1 || sender > config_.siteCount)
    throw Error(ErrorCode::BadRequest, "secure aggregation keys: " + site(sender) + " not in the round");
  if (keys_.count(sender)) throw Error(ErrorCode::Replay, "secure aggregation keys: " + site(sender) + " sent twice");
  keys_[sender] = keys;
}

std::string SecAggServer::closeKeys() {
  expect(Step::Keys, "closing the key step");
  if (keys_.size() < config_.threshold)
    abort(ErrorCode::Rejected, std::to_string(keys_.size()) + " sites advertised keys, threshold " +
                                   std::to_string(config_.threshold));
  step_ = Step::Shares;
  wire::Writer w(wire::Step::KeyList, config_.round, 0);
  w.u32(static_cast<uint32_t>(keys_.size()));
  for (const auto& [id, keys] : keys_) {
    w.u32(id);
    w.key(keys[0]);
    w.key(keys[1]);
  }
  return w.take();
}

void SecAggServer::receiveShares(const std::string& message) {
  expect(Step::Shares, "shared keys");
  wire::Reader r(message, wire::Step::Shares, config_.round, "secure aggregation shares");
  const uint32_t sender = r.sender();
  if (!keys_.count(sender))
    throw Error(ErrorCode::BadRequest, "secure aggregation shares: " + site(sender) + " did not advertise keys");
  if (commitments_.count(sender))
    throw Error(ErrorCode::Replay, "secure aggregation shares: " + site(sender) + " sent twice");
  const Secret32 commitment = r.key();
  const uint64_t count = r.count(8);
  std::map<uint32_t, std::string> boxes;
  for (uint64_t k = 0; k < count; ++k) {
    const uint32_t recipient = r.u32();
    std::string box = r.blob();
    if (!keys_.count(recipient) || recipient == sender || boxes.count(recipient))
      throw Error(ErrorCode::BadRequest, "secure aggregation shares of " + site(sender) + ": bad recipient " +
                                             site(recipient));
    boxes[recipient] = std::move(box);
  }
  r.end();
  if (boxes.size() != keys_.size() - 1)
    throw Error(ErrorCode::BadRequest, "secure aggregation shares of " + site(sender) + ": " +
                                           std::to_string(boxes.size()) + " boxes for " +
                                           std::to_string(keys_.size() - 1) + " peers");
  commitments_[sender] = commitment;
  for (auto& [recipient, box] : boxes) ciphertextsTo_[recipient][sender] = std::move(box);
}

void SecAggServer::closeShares() {
  expect(Step::Shares, "closing the share step");
  if (commitments_.size() < config_.threshold)
    abort(ErrorCode::Rejected, std::to_string(commitments_.size()) + " sites shared keys, threshold " +
                                   std::to_string(config_.threshold));
  for (const auto& [id, c] : commitments_) shareSenders_.push_back(id);
  step_ = Step::Masked;
}

std::string SecAggServer::sharesFor(uint32_t siteId) const {
  if (aborted_ || step_ == Step::Keys || step_ == Step::Shares)
    throw Error(ErrorCode::Conflict, "secure aggregation: shares relayed before the share step closed");
  if (!commitments_.count(siteId))
    throw Error(ErrorCode::NotFound, "secure aggregation: " + site(siteId) + " did not share keys");
  wire::Writer w(wire::Step::SharesRelay, config_.round, 0);
  const auto& inbox = ciphertextsTo_.at(siteId);
  std::vector<const std::pair<const uint32_t, std::string>*> fromU2;
  for (const auto& entry : inbox)
    if (commitments_.count(entry.first)) fromU2.push_back(&entry);
  w.u32(static_cast<uint32_t>(fromU2.size()));
  for (const auto* entry : fromU2) {
    w.u32(entry->first);
    w.blob(entry->second);
  }
  return w.take();
}

void SecAggServer::receiveMaskedInput(const std::string& message) {
  expect(Step::Masked, "masked input");
  wire::Reader r(message, wire::Step::Masked, config_.round, "secure aggregation masked input");
  const uint32_t sender = r.sender();
  if (!commitments_.count(sender))
    throw Error(ErrorCode::BadRequest, "secure aggregation masked input: " + site(sender) + " did not share keys");
  if (std::find(maskedSenders_.begin(), maskedSenders_.end(), sender) != maskedSenders_.end())
    throw Error(ErrorCode::Replay, "secure aggregation masked input: " + site(sender) + " sent twice");
  const uint64_t length = r.u64();
  if (length != config_.length)
    throw Error(ErrorCode::ShapeMismatch, "secure aggregation masked input of " + site(sender) + ": " +
                                              std::to_string(length) + " values, round expects " +
                                              std::to_string(config_.length));
  const auto* values = reinterpret_cast<const uint32_t*>(r.dataAt());
  r.skip(length * 4);
  r.end();
  if (sum_.empty()) sum_.assign(config_.length, 0);
  uint32_t* sum = sum_.data();
  for (uint64_t i = 0; i < length; ++i) {
    uint32_t v;
    std::memcpy(&v, values + i, 4);  // the message buffer need not be aligned
    sum[i] += v;
  }
  maskedSenders_.push_back(sender);
}

std::string SecAggServer::closeMaskedInputs() {
  expect(Step::Masked, "closing the masked-input step");
  if (maskedSenders_.size() < config_.threshold)
    abort(ErrorCode::Rejected, std::to_string(maskedSenders_.size()) + " sites sent masked inputs, threshold " +
                                   std::to_string(config_.threshold));
  std::sort(maskedSenders_.begin(), maskedSenders_.end());
  step_ = Step::Unmask;
  wire::Writer w(wire::Step::Survivors, config_.round, 0);
  w.u32(static_cast<uint32_t>(maskedSenders_.size()));
  for (uint32_t id : maskedSenders_) w.u32(id);
  return w.take();
}

void SecAggServer::receiveUnmasking(const std::string& message) {
  expect(Step::Unmask, "unmasking");
  wire::Reader r(message, wire::Step::Unmask, config_.round, "secure aggregation unmasking");
  const uint32_t sender = r.sender();
  if (!std::binary_search(maskedSenders_.begin(), maskedSenders_.end(), sender))
    throw Error(ErrorCode::BadRequest, "secure aggregation unmasking: " + site(sender) + " is not a survivor");
  if (unmaskings_.count(sender))
    throw Error(ErrorCode::Replay, "secure aggregation unmasking: " + site(sender) + " sent twice");
  Revealed revealed;
  const uint64_t count = r.count(5 + kShareBytes);
  for (uint64_t k = 0; k < count; ++k) {
    const uint32_t about = r.u32();
    const uint8_t kind = r.u8();
    const SecretShare share = r.share();
    const bool survived = std::binary_search(maskedSenders_.begin(), maskedSenders_.end(), about);
    if (!commitments_.count(about) || kind > 1 || (kind == 0) != survived || share.x != sender ||
        revealed.selfMask.count(about) || revealed.maskKey.count(about))
      throw Error(ErrorCode::BadRequest, "secure aggregation unmasking of " + site(sender) + ": bad share about " +
                                             site(about));
    (kind == 0 ? revealed.selfMask : revealed.maskKey)[about] = share;
  }
  r.end();
  unmaskings_[sender] = std::move(revealed);
}

std::vector<uint32_t> SecAggServer::finish() {
  expect(Step::Unmask, "finishing");
  if (unmaskings_.size() < config_.threshold)
    abort(ErrorCode::Rejected, std::to_string(unmaskings_.size()) + " sites answered the unmasking, threshold " +
                                   std::to_string(config_.threshold));
  for (uint32_t about : shareSenders_) {
    const bool survived = std::binary_search(maskedSenders_.begin(), maskedSenders_.end(), about);
    std::vector<SecretShare> shares;
    for (const auto& [responder, revealed] : unmaskings_) {
      const auto& pool = survived ? revealed.selfMask : revealed.maskKey;
      const auto it = pool.find(about);
      if (it != pool.end()) shares.push_back(it->second);
    }
    if (shares.size() < config_.threshold)
      abort(ErrorCode::Rejected, std::to_string(shares.size()) + " shares about " + site(about) + ", threshold " +
                                     std::to_string(config_.threshold));
    Secret32 secret;
    try {
      secret = reconstructSecret(shares, config_.threshold);
    } catch (const Error& e) {
      abort(ErrorCode::Corrupt, "shares about " + site(about) + " are inconsistent (" + e.what() + ")");
    }
    if (survived) {
      if (commitmentOf(secret) != commitments_.at(about))
        abort(ErrorCode::Corrupt, "the self-mask rebuilt for " + site(about) +
                                      " does not match its commitment (a site lied about its share)");
      applyMask(sum_, secret, -1);
    } else {
      if (x25519PublicOf(secret) != keys_.at(about)[1])
        abort(ErrorCode::Corrupt, "the mask key rebuilt for dropped " + site(about) +
                                      " does not match its public key (a site lied about its share)");
      // Each survivor i added +PRG(s_i,about) when about > i and −PRG when about < i; undo that.
      for (uint32_t survivor : maskedSenders_) {
        const Secret32 seed = agreePairSeed(secret, keys_.at(survivor)[1], config_.round, about, survivor);
        applyMask(sum_, seed, about > survivor ? -1 : +1);
      }
    }
    sodium_memzero(secret.data(), secret.size());
  }
  step_ = Step::Done;
  return std::move(sum_);
}

// ---------------------------------------------------------------------------------------------
// In-process runner

SecAggRoundResult runSecureAggregationRound(const SecAggConfig& config,
                                            const std::function<std::vector<uint32_t>(uint32_t site)>& inputOf,
                                            const SecAggDropouts& dropouts) {
  SecAggRoundResult result;
  std::map<uint32_t, double> siteCpu;
  std::map<uint32_t, uint64_t> up, down;
  double serverCpu = 0;
  auto asSite = [&](uint32_t id, auto&& work) {
    const double start = threadCpuSeconds();
    auto value = work();
    siteCpu[id] += threadCpuSeconds() - start;
    return value;
  };
  auto asServer = [&](auto&& work) {
    const double start = threadCpuSeconds();
    work();
    serverCpu += threadCpuSeconds() - start;
  };

  SecAggServer server(config);
  std::vector<std::unique_ptr<SecAggClient>> sites;
  for (uint32_t id = 1; id <= config.siteCount; ++id) {
    std::unique_ptr<SecAggClient> client;
    asSite(id, [&] {
      client = std::make_unique<SecAggClient>(config, id);
      return 0;
    });
    sites.push_back(std::move(client));
  }
  auto alive = [&](uint32_t id, const std::set<uint32_t>& droppedAt) { return !droppedAt.count(id); };

  for (auto& s : sites) {
    const std::string m = asSite(s->siteId(), [&] { return s->advertiseKeys(); });
    up[s->siteId()] += m.size();
    asServer([&] { server.receiveKeys(m); });
  }
  std::string keyList;
  asServer([&] { keyList = server.closeKeys(); });
  std::set<uint32_t> gone = dropouts.beforeShares;
  for (auto& s : sites) {
    if (!alive(s->siteId(), gone)) continue;
    down[s->siteId()] += keyList.size();
    const std::string m = asSite(s->siteId(), [&] { return s->shareKeys(keyList); });
    up[s->siteId()] += m.size();
    asServer([&] { server.receiveShares(m); });
  }
  asServer([&] { server.closeShares(); });
  gone.insert(dropouts.beforeMaskedInput.begin(), dropouts.beforeMaskedInput.end());
  for (auto& s : sites) {
    if (!alive(s->siteId(), gone)) continue;
    std::string relay;
    asServer([&] { relay = server.sharesFor(s->siteId()); });
    down[s->siteId()] += relay.size();
    const std::vector<uint32_t> input = inputOf(s->siteId());  // the site's training, not the protocol
    std::string m = asSite(s->siteId(), [&] { return s->maskedInput(relay, input); });
    up[s->siteId()] += m.size();
    asServer([&] { server.receiveMaskedInput(m); });
  }
  std::string survivorList;
  asServer([&] { survivorList = server.closeMaskedInputs(); });
  gone.insert(dropouts.beforeUnmasking.begin(), dropouts.beforeUnmasking.end());
  for (auto& s : sites) {
    if (!alive(s->siteId(), gone)) continue;
    down[s->siteId()] += survivorList.size();
    const std::string m = asSite(s->siteId(), [&] { return s->unmask(survivorList); });
    up[s->siteId()] += m.size();
    asServer([&] { server.receiveUnmasking(m); });
  }
  asServer([&] { result.sum = server.finish(); });
  result.survivors = server.survivors();

  double cpuSum = 0;
  uint64_t upSum = 0, downSum = 0, full = 0;
  for (uint32_t id = 1; id <= config.siteCount; ++id) {
    result.siteCpuSecondsMax = std::max(result.siteCpuSecondsMax, siteCpu[id]);
    result.serverBytesIn += up[id];
    result.serverBytesOut += down[id];
    if (!alive(id, gone)) continue;
    cpuSum += siteCpu[id];
    upSum += up[id];
    downSum += down[id];
    ++full;
  }
  if (full) {
    result.siteCpuSecondsMean = cpuSum / full;
    result.bytesUpPerSite = upSum / full;
    result.bytesDownPerSite = downSum / full;
  }
  result.serverCpuSeconds = serverCpu;
  return result;
}

uint32_t secAggMessageSender(const std::string& message) {
  // Layout of wire::Writer: "TSA1", step (1 byte), round id (16), sender (u32 little-endian).
  if (message.size() < 25 || message.compare(0, 4, "TSA1") != 0)
    throw Error(ErrorCode::BadRequest, "secure aggregation: body is not a protocol message");
  uint32_t sender = 0;
  std::memcpy(&sender, message.data() + 21, 4);
  return sender;
}

}  // namespace tessera::federation
