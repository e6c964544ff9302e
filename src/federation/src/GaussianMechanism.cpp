#include "tessera/federation/GaussianMechanism.h"

#include <sodium.h>

#include <cmath>
#include <cstring>

#include "tessera/common/Error.h"

namespace tessera::federation {
namespace {

bool endsWith(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

void initSodium() {
  if (sodium_init() < 0) throw Error(ErrorCode::Internal, "libsodium: initialisation failed");
}

constexpr size_t kBlockWords = 512;  // 4 KiB of keystream per refill

}  // namespace

void DpParameters::validate() const {
  if (!(clipNorm > 0) || !std::isfinite(clipNorm))
    throw Error(ErrorCode::BadRequest, "dp clip=" + std::to_string(clipNorm) + ": must be a positive number");
  if (!(noiseMultiplier >= 0) || !std::isfinite(noiseMultiplier))
    throw Error(ErrorCode::BadRequest, "dp noise multiplier=" + std::to_string(noiseMultiplier) + ": must be >= 0");
}

bool isRunningStatistic(const std::string& name) {
  return endsWith(name, "running_mean") || endsWith(name, "running_var") || endsWith(name, "num_batches_tracked");
}

double privateNorm(const common::WeightSet& delta) {
  double sum = 0;
  for (const auto& t : delta) {
    if (isRunningStatistic(t.name)) continue;
    for (float v : t.values) sum += double(v) * double(v);
  }
  return std::sqrt(sum);
}

double clipToNorm(common::WeightSet& delta, double clipNorm) {
  if (!(clipNorm > 0)) throw Error(ErrorCode::BadRequest, "dp clip=" + std::to_string(clipNorm) + ": must be positive");
  for (auto& t : delta)
    if (isRunningStatistic(t.name)) std::fill(t.values.begin(), t.values.end(), 0.0f);
  const double norm = privateNorm(delta);
  if (norm <= clipNorm) return norm;
  const double scale = clipNorm / norm;
  for (auto& t : delta) {
    if (isRunningStatistic(t.name)) continue;
    for (float& v : t.values) v = static_cast<float>(double(v) * scale);
  }
  return norm;
}

NoiseSource::NoiseSource(std::optional<uint64_t> testSeed) {
  initSodium();
  if (testSeed) {
    std::memset(key_, 0, sizeof key_);
    std::memcpy(key_, &*testSeed, sizeof *testSeed);
  } else {
    randombytes_buf(key_, sizeof key_);
  }
  buffer_.resize(kBlockWords);
  next_ = kBlockWords;
}

void NoiseSource::refill() {
  // One nonce per 4 KiB block: the blocks are distinct slices of the key's keystream.
  uint8_t nonce[crypto_stream_chacha20_NONCEBYTES] = {};
  static_assert(sizeof nonce == sizeof blockCounter_);
  std::memcpy(nonce, &blockCounter_, sizeof nonce);
  ++blockCounter_;
  crypto_stream_chacha20(reinterpret_cast<unsigned char*>(buffer_.data()), buffer_.size() * sizeof(uint64_t), nonce,
                         key_);
  next_ = 0;
}

double NoiseSource::uniform() {
  if (next_ == buffer_.size()) refill();
  const uint64_t bits = buffer_[next_++] >> 11;  // 53 bits
  return (double(bits) + 0.5) * 0x1.0p-53;        // never 0 or 1: log(u) stays finite
}

double NoiseSource::gaussian() {
  if (spareGaussian_) {
    const double g = *spareGaussian_;
    spareGaussian_.reset();
    return g;
  }
  const double r = std::sqrt(-2.0 * std::log(uniform()));
  const double angle = 2.0 * M_PI * uniform();
  spareGaussian_ = r * std::sin(angle);
  return r * std::cos(angle);
}

void NoiseSource::addNoise(common::WeightSet& weights, double std) {
  if (std == 0) return;
  for (auto& t : weights) {
    if (isRunningStatistic(t.name)) continue;
    for (float& v : t.values) v = static_cast<float>(double(v) + std * gaussian());
  }
}

double privatizeLocally(common::WeightSet& delta, const DpParameters& dp, NoiseSource& noise) {
  dp.validate();
  const double norm = clipToNorm(delta, dp.clipNorm);
  noise.addNoise(delta, dp.noiseMultiplier * dp.clipNorm);
  return norm;
}

void addCentralNoise(common::WeightSet& average, const DpParameters& dp, int64_t count, NoiseSource& noise) {
  dp.validate();
  if (count < 1) throw Error(ErrorCode::Internal, "central DP noise for " + std::to_string(count) + " updates");
  for (auto& t : average)
    if (isRunningStatistic(t.name)) std::fill(t.values.begin(), t.values.end(), 0.0f);
  noise.addNoise(average, dp.noiseMultiplier * dp.clipNorm / double(count));
}

}  // namespace tessera::federation
