// Secure aggregation: the server's unmasked sum equals the plain fixed-point sum exactly, one
// masked update alone looks uniform, dropouts after key sharing are recovered, too many abort
// without output, lying or tampered shares and replayed messages are refused.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "tessera/common/Error.h"
#include "tessera/federation/FixedPoint.h"
#include "tessera/federation/SecretSharing.h"
#include "tessera/federation/SecureAggregation.h"
#include "tessera/federation/SecureAggregationPolicy.h"

using namespace tessera::federation;
using tessera::Error;
using tessera::ErrorCode;

namespace {

constexpr size_t kHeader = 25;  // magic, step, round id, sender

std::vector<float> randomUpdate(uint32_t seed, size_t length) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(length);
  for (float& x : v) x = u(rng);
  return v;
}

SecAggConfig config(uint32_t n, uint32_t t, uint64_t length) {
  SecAggConfig c;
  c.round = SecAggConfig::randomRoundId();
  c.siteCount = n;
  c.threshold = t;
  c.length = length;
  return c;
}

ErrorCode codeOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  ADD_FAILURE() << "no error thrown";
  return ErrorCode::Internal;
}

// Drives sites and server by hand up to the masked inputs, for the tests that tamper.
struct ManualRound {
  SecAggConfig cfg;
  const FixedPointCodec codec{1.0, 16};
  SecAggServer server;
  std::vector<std::unique_ptr<SecAggClient>> sites;
  std::vector<std::string> masked;

  ManualRound(uint32_t n, uint32_t t, uint64_t length) : cfg(config(n, t, length)), server(cfg) {
    for (uint32_t id = 1; id <= n; ++id) sites.push_back(std::make_unique<SecAggClient>(cfg, id));
    for (auto& s : sites) server.receiveKeys(s->advertiseKeys());
    const std::string keys = server.closeKeys();
    for (auto& s : sites) server.receiveShares(s->shareKeys(keys));
    server.closeShares();
  }
  void sendMasked() {
    for (auto& s : sites) {
      masked.push_back(s->maskedInput(server.sharesFor(s->siteId()),
                                      codec.encode(randomUpdate(s->siteId(), cfg.length))));
      server.receiveMaskedInput(masked.back());
    }
  }
};

}  // namespace

TEST(FixedPoint, SumOfMaxSitesAtTheClipRangeDoesNotWrap) {
  const FixedPointCodec codec(0.5, 50);
  const std::vector<float> high{0.5f, 7.0f}, low{-0.5f, -7.0f};  // 7 is clipped to 0.5
  std::vector<uint32_t> plus, minus;
  for (int i = 0; i < 50; ++i) {
    addInto(plus, codec.encode(high));
    addInto(minus, codec.encode(low));
  }
  EXPECT_NEAR(codec.decode(plus[0]), 25.0, 1e-6);
  EXPECT_NEAR(codec.decode(plus[1]), 25.0, 1e-6);
  EXPECT_NEAR(codec.decode(minus[0]), -25.0, 1e-6);
  EXPECT_NEAR(codec.decodeMean(minus, 50)[1], -0.5, 1e-7);
  EXPECT_EQ(codeOf([&] { codec.encode(std::vector<float>{NAN}); }), ErrorCode::NonFinite);
  EXPECT_EQ(codeOf([&] { FixedPointCodec(0, 3); }), ErrorCode::BadRequest);
}

TEST(SecretSharing, AnyThresholdSharesRebuildAndAWrongExtraShareIsCaught) {
  Secret32 secret;
  for (int i = 0; i < 32; ++i) secret[i] = static_cast<uint8_t>(255 - 7 * i);
  auto shares = shareSecret(secret, 3, 5);
  EXPECT_EQ(reconstructSecret({shares[4], shares[1], shares[2]}, 3), secret);
  EXPECT_EQ(reconstructSecret({shares[0], shares[3], shares[2], shares[1]}, 3), secret);
  EXPECT_EQ(codeOf([&] { reconstructSecret({shares[0], shares[1]}, 3); }), ErrorCode::BadRequest);
  auto lie = shares;
  lie[4].y[2] = (lie[4].y[2] + 1) % ((uint64_t{1} << 61) - 1);
  EXPECT_EQ(codeOf([&] { reconstructSecret(lie, 3); }), ErrorCode::Corrupt);
}

TEST(SecureAggregation, UnmaskedSumEqualsPlainFixedPointSumExactly) {
  const auto cfg = config(5, 3, 3001);
  const FixedPointCodec codec(1.0, 5);
  std::vector<uint32_t> plain;
  for (uint32_t id = 1; id <= 5; ++id) addInto(plain, codec.encode(randomUpdate(id, cfg.length)));
  const auto result =
      runSecureAggregationRound(cfg, [&](uint32_t id) { return codec.encode(randomUpdate(id, cfg.length)); });
  EXPECT_EQ(result.sum, plain);
  EXPECT_EQ(result.survivors, (std::vector<uint32_t>{1, 2, 3, 4, 5}));
  // And the decoded mean is the float mean within the codec's resolution.
  const auto mean = codec.decodeMean(result.sum, 5);
  double expected = 0;
  for (uint32_t id = 1; id <= 5; ++id) expected += randomUpdate(id, cfg.length)[17];
  EXPECT_NEAR(mean[17], expected / 5, 1e-6);
}

TEST(SecureAggregation, OneMaskedUpdateLooksUniform) {
  ManualRound round(3, 2, 1 << 16);
  // A constant update: as far from uniform as it gets before masking.
  const std::vector<uint32_t> constant(round.cfg.length, 12345);
  const std::string relay = round.server.sharesFor(1);
  const std::string message = round.sites[0]->maskedInput(relay, constant);
  ASSERT_EQ(message.size(), kHeader + 8 + round.cfg.length * 4);
  std::vector<uint32_t> values(round.cfg.length);
  std::memcpy(values.data(), message.data() + kHeader + 8, values.size() * 4);

  auto chiSquareOfTopByte = [](const std::vector<uint32_t>& v) {
    std::vector<double> counts(256, 0);
    for (uint32_t x : v) counts[x >> 24] += 1;
    const double expected = v.size() / 256.0;
    double chi = 0;
    for (double c : counts) chi += (c - expected) * (c - expected) / expected;
    return chi;
  };
  // 255 degrees of freedom: P(χ² > 330) ≈ 0.001.
  EXPECT_LT(chiSquareOfTopByte(values), 330);
  EXPECT_GT(chiSquareOfTopByte(constant), 330);  // the statistic does see non-uniform data
  std::vector<double> lowBytes(256, 0);
  for (uint32_t x : values) lowBytes[x & 0xff] += 1;
  double chiLow = 0;
  for (double c : lowBytes) chiLow += (c - values.size() / 256.0) * (c - values.size() / 256.0) / (values.size() / 256.0);
  EXPECT_LT(chiLow, 330);

  double mean = 0, squares = 0;
  for (uint32_t x : values) {
    const double u = x / 4294967296.0;
    mean += u;
    squares += u * u;
  }
  mean /= values.size();
  const double variance = squares / values.size() - mean * mean;
  const double n = static_cast<double>(values.size());
  EXPECT_NEAR(mean, 0.5, 5 * std::sqrt(1.0 / 12 / n));  // uniform on [0,1): mean 1/2, variance 1/12
  EXPECT_NEAR(variance, 1.0 / 12, 5 * std::sqrt(1.0 / 180 / n));
}

TEST(SecureAggregation, DropoutsAfterKeySharingStillGiveTheExactSumOfSurvivors) {
  const auto cfg = config(5, 3, 777);
  const FixedPointCodec codec(1.0, 5);
  SecAggDropouts dropouts;
  dropouts.beforeMaskedInput = {2};  // its pairwise masks must be removed with its rebuilt key
  dropouts.beforeUnmasking = {4};    // its input counts; others reveal its self-mask
  const auto result = runSecureAggregationRound(
      cfg, [&](uint32_t id) { return codec.encode(randomUpdate(id, cfg.length)); }, dropouts);
  std::vector<uint32_t> plain;
  for (uint32_t id : {1u, 3u, 4u, 5u}) addInto(plain, codec.encode(randomUpdate(id, cfg.length)));
  EXPECT_EQ(result.survivors, (std::vector<uint32_t>{1, 3, 4, 5}));
  EXPECT_EQ(result.sum, plain);
}

TEST(SecureAggregation, ASiteThatAdvertisedKeysButNeverSharedThemIsLeftOut) {
  const auto cfg = config(7, 4, 500);
  const FixedPointCodec codec(1.0, 7);
  SecAggDropouts dropouts;
  dropouts.beforeShares = {6};       // in U1 only: nobody masks with it
  dropouts.beforeMaskedInput = {2};  // in U2: its masks are removed with its rebuilt key
  dropouts.beforeUnmasking = {4};
  const auto result = runSecureAggregationRound(
      cfg, [&](uint32_t id) { return codec.encode(randomUpdate(id, cfg.length)); }, dropouts);
  std::vector<uint32_t> plain;
  for (uint32_t id : {1u, 3u, 4u, 5u, 7u}) addInto(plain, codec.encode(randomUpdate(id, cfg.length)));
  EXPECT_EQ(result.survivors, (std::vector<uint32_t>{1, 3, 4, 5, 7}));
  EXPECT_EQ(result.sum, plain);
}

TEST(SecureAggregation, TooFewSurvivorsAbortWithoutOutput) {
  const auto cfg = config(5, 3, 64);
  const FixedPointCodec codec(1.0, 5);
  auto input = [&](uint32_t id) { return codec.encode(randomUpdate(id, cfg.length)); };
  SecAggDropouts early;
  early.beforeMaskedInput = {1, 2, 3};
  EXPECT_EQ(codeOf([&] { runSecureAggregationRound(cfg, input, early); }), ErrorCode::Rejected);
  SecAggDropouts late;
  late.beforeUnmasking = {2, 4, 5};
  EXPECT_EQ(codeOf([&] { runSecureAggregationRound(cfg, input, late); }), ErrorCode::Rejected);

  ManualRound round(5, 3, 64);
  round.sendMasked();
  const std::string survivors = round.server.closeMaskedInputs();
  round.server.receiveUnmasking(round.sites[0]->unmask(survivors));
  round.server.receiveUnmasking(round.sites[1]->unmask(survivors));
  EXPECT_EQ(codeOf([&] { round.server.finish(); }), ErrorCode::Rejected);
  EXPECT_TRUE(round.server.aborted());
  EXPECT_EQ(codeOf([&] { round.server.finish(); }), ErrorCode::Rejected);  // stays aborted
}

TEST(SecureAggregation, ASiteLyingAboutAShareIsDetectedAndTheRoundAborted) {
  for (uint32_t responders : {3u, 5u}) {  // exactly t (commitment check) and more (polynomial check)
    ManualRound round(5, 3, 64);
    round.sendMasked();
    const std::string survivors = round.server.closeMaskedInputs();
    for (uint32_t i = 0; i < responders; ++i) {
      std::string answer = round.sites[i]->unmask(survivors);
      if (i == 1) answer[kHeader + 4 + 4 + 1 + 4 + 3] ^= 0x01;  // a bit of the first share's value
      round.server.receiveUnmasking(answer);
    }
    EXPECT_EQ(codeOf([&] { round.server.finish(); }), ErrorCode::Corrupt) << responders << " responders";
    EXPECT_TRUE(round.server.aborted());
  }
}

TEST(SecureAggregation, ASharedKeyChangedOnTheWayFailsAuthentication) {
  ManualRound round(3, 2, 16);
  std::string relay = round.server.sharesFor(2);
  relay[relay.size() - 5] ^= 0x40;  // inside the last box's ciphertext
  EXPECT_EQ(codeOf([&] { round.sites[1]->maskedInput(relay, std::vector<uint32_t>(16, 0)); }), ErrorCode::Corrupt);
  // A box relayed to the wrong site does not open either.
  std::string other = round.server.sharesFor(3);
  EXPECT_EQ(codeOf([&] { round.sites[0]->maskedInput(other, std::vector<uint32_t>(16, 0)); }),
            ErrorCode::Replay);  // it names site 1 itself as a sender: refused before decryption
}

TEST(SecureAggregation, ReplayedAndDuplicateMessagesAreRefused) {
  const auto cfg = config(3, 2, 8);
  SecAggServer server(cfg);
  SecAggClient a(cfg, 1), b(cfg, 2);
  const std::string keysA = a.advertiseKeys();
  server.receiveKeys(keysA);
  EXPECT_EQ(codeOf([&] { server.receiveKeys(keysA); }), ErrorCode::Replay);
  // The same site's keys from a previous round.
  const auto old = config(3, 2, 8);
  SecAggClient stale(old, 2);
  EXPECT_EQ(codeOf([&] { server.receiveKeys(stale.advertiseKeys()); }), ErrorCode::Replay);
  EXPECT_EQ(codeOf([&] { a.advertiseKeys(); }), ErrorCode::Conflict);

  ManualRound round(3, 2, 8);
  round.sendMasked();
  EXPECT_EQ(codeOf([&] { round.server.receiveMaskedInput(round.masked[0]); }), ErrorCode::Replay);
  const std::string survivors = round.server.closeMaskedInputs();
  const std::string answer = round.sites[0]->unmask(survivors);
  round.server.receiveUnmasking(answer);
  EXPECT_EQ(codeOf([&] { round.server.receiveUnmasking(answer); }), ErrorCode::Replay);
  // A site answers the unmasking once: a second survivor list gets nothing.
  EXPECT_EQ(codeOf([&] { round.sites[0]->unmask(survivors); }), ErrorCode::Conflict);
  round.server.receiveUnmasking(round.sites[1]->unmask(survivors));
  const auto sum = round.server.finish();
  std::vector<uint32_t> plain;
  for (uint32_t id = 1; id <= 3; ++id) addInto(plain, round.codec.encode(randomUpdate(id, 8)));
  EXPECT_EQ(sum, plain);
}

TEST(SecureAggregation, ThresholdMustBeAMajority) {
  EXPECT_EQ(codeOf([] { config(4, 2, 8).validate(); }), ErrorCode::BadRequest);
  EXPECT_EQ(codeOf([] { config(1, 1, 8).validate(); }), ErrorCode::BadRequest);
  config(4, 3, 8).validate();
}

TEST(SecureAggregationPolicy, StrategiesNeedingSingleUpdatesAreRefusedByName) {
  MergePolicy policy;
  for (auto s : {Strategy::FedAvg, Strategy::FedBN, Strategy::FedAdam, Strategy::FedYogi}) {
    policy.strategy = s;
    requireSecureAggregationCompatible(policy);
  }
  for (auto s : {Strategy::TrimmedMean, Strategy::Median, Strategy::Dafne}) {
    policy.strategy = s;
    try {
      requireSecureAggregationCompatible(policy);
      ADD_FAILURE() << toString(s) << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::BadRequest);
      EXPECT_NE(std::string(e.what()).find(toString(s)), std::string::npos) << e.what();
    }
  }
  policy.strategy = Strategy::FedAvg;
  policy.dp.mode = DpMode::Central;
  policy.dp.adaptiveQuantile = 0.5;
  EXPECT_EQ(codeOf([&] { requireSecureAggregationCompatible(policy); }), ErrorCode::BadRequest);
}

TEST(SecureAggregationPolicy, CentralNoiseIsAddedOnceToTheUnmaskedMean) {
  const uint32_t m = 4;
  const size_t d = 40000;
  const FixedPointCodec codec(1.0, m);
  std::vector<uint32_t> sum;
  std::vector<float> update(d, 0.0f);
  update[0] = 0.8f;  // L2 norm 0.8 ≤ C = 1
  for (uint32_t i = 0; i < m; ++i) addInto(sum, codec.encode(update));
  DpParameters dp{1.0, 2.0};
  NoiseSource noise(7);
  const auto mean = privateMeanOfSecureSum(sum, m, codec, dp, noise);
  double s = 0, ss = 0;
  for (size_t i = 1; i < d; ++i) {
    s += mean[i];
    ss += double(mean[i]) * mean[i];
  }
  const double stdev = std::sqrt(ss / (d - 1) - (s / (d - 1)) * (s / (d - 1)));
  EXPECT_NEAR(stdev, 2.0 * 1.0 / m, 0.02);  // z·C/m (the rounding slack is ~1e-6 here)
  EXPECT_NEAR(s / (d - 1), 0.0, 0.01);
}
