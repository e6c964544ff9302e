// Clipping is exact, the noise has the promised distribution and is unpredictable, and adaptive
// clipping finds the target quantile.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "tessera/common/Error.h"
#include "tessera/federation/AdaptiveClipping.h"
#include "tessera/federation/GaussianMechanism.h"

using namespace tessera::federation;
using tessera::common::WeightSet;

namespace {

WeightSet sampleDelta(float scale) {
  WeightSet d;
  d.push_back({"enc0.conv.weight", {2, 3}, {1, -2, 3, -4, 5, -6}});
  d.push_back({"enc0.norm.weight", {2}, {0.5f, -0.5f}});
  d.push_back({"enc0.norm.running_mean", {2}, {7, 8}});
  d.push_back({"enc0.norm.running_var", {2}, {9, 10}});
  for (auto& t : d)
    for (float& v : t.values) v *= scale;
  return d;
}

}  // namespace

TEST(GaussianMechanism, ClipsToExactlyCAndDropsRunningStatistics) {
  auto d = sampleDelta(1.0f);
  const double before = std::sqrt(1 + 4 + 9 + 16 + 25 + 36 + 0.25 + 0.25);
  EXPECT_NEAR(privateNorm(d), before, 1e-6);
  EXPECT_NEAR(clipToNorm(d, 2.0), before, 1e-6);
  EXPECT_NEAR(privateNorm(d), 2.0, 1e-6);
  // Direction kept: every kept coordinate scaled by the same factor.
  EXPECT_NEAR(d[0].values[5] / d[0].values[0], -6.0, 1e-5);
  for (const auto& t : d)
    if (isRunningStatistic(t.name))
      for (float v : t.values) EXPECT_EQ(v, 0.0f) << t.name;
}

TEST(GaussianMechanism, LeavesSmallUpdatesUnchanged) {
  auto d = sampleDelta(0.01f);
  const auto original = d;
  clipToNorm(d, 10.0);
  for (size_t i = 0; i < d.size(); ++i) {
    if (isRunningStatistic(d[i].name)) continue;
    EXPECT_EQ(d[i].values, original[i].values) << d[i].name;
  }
}

TEST(GaussianMechanism, NoiseHasMeanZeroAndStdZC) {
  NoiseSource noise;
  constexpr int kDraws = 1000000;
  WeightSet w{{"layer.weight", {kDraws}, std::vector<float>(kDraws, 0.0f)}};
  const DpParameters dp{0.5, 1.3};
  noise.addNoise(w, dp.noiseMultiplier * dp.clipNorm);
  double sum = 0, sumSq = 0, sum4 = 0;
  int withinOneStd = 0;
  const double expectedStd = 0.65;
  for (float v : w[0].values) {
    sum += v;
    sumSq += double(v) * v;
    sum4 += std::pow(double(v) / expectedStd, 4);
    withinOneStd += std::fabs(v) <= expectedStd;
  }
  const double mean = sum / kDraws, std = std::sqrt(sumSq / kDraws - mean * mean);
  EXPECT_NEAR(mean, 0.0, 5 * expectedStd / std::sqrt(double(kDraws)));
  EXPECT_NEAR(std, expectedStd, expectedStd * 0.005);
  EXPECT_NEAR(sum4 / kDraws, 3.0, 0.05);                        // Gaussian kurtosis
  EXPECT_NEAR(double(withinOneStd) / kDraws, 0.682689, 0.003);  // and its shape, not only moments
}

TEST(GaussianMechanism, NoiseIsFreshUnlessSeeded) {
  NoiseSource a, b, c(42), d(42);
  bool differs = false;
  for (int i = 0; i < 8; ++i) differs |= a.gaussian() != b.gaussian();
  EXPECT_TRUE(differs);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(c.gaussian(), d.gaussian());
}

TEST(GaussianMechanism, LocalModeClipsThenAddsNoise) {
  auto d = sampleDelta(100.0f);
  NoiseSource noise(7);
  const double before = privatizeLocally(d, {1.0, 0.0}, noise);
  EXPECT_GT(before, 1.0);
  EXPECT_NEAR(privateNorm(d), 1.0, 1e-6);  // z = 0: clipping only
  // With noise, the private tensors move and running statistics stay dropped.
  auto e = sampleDelta(100.0f);
  privatizeLocally(e, {1.0, 2.0}, noise);
  EXPECT_GT(privateNorm(e), 1.0);
  for (float v : e[2].values) EXPECT_EQ(v, 0.0f);
}

TEST(GaussianMechanism, CentralNoiseShrinksWithSiteCount) {
  NoiseSource noise(3);
  constexpr int kN = 200000;
  auto stdOf = [&](int64_t count) {
    WeightSet w{{"w", {kN}, std::vector<float>(kN, 0.0f)}};
    addCentralNoise(w, {2.0, 1.0}, count, noise);
    double s = 0;
    for (float v : w[0].values) s += double(v) * v;
    return std::sqrt(s / kN);
  };
  EXPECT_NEAR(stdOf(1), 2.0, 0.02);
  EXPECT_NEAR(stdOf(10), 0.2, 0.002);
}

TEST(GaussianMechanism, RefusesBadParameters) {
  NoiseSource noise(1);
  auto d = sampleDelta(1.0f);
  EXPECT_THROW(privatizeLocally(d, {0.0, 1.0}, noise), tessera::Error);
  EXPECT_THROW(privatizeLocally(d, {1.0, -1.0}, noise), tessera::Error);
  EXPECT_THROW(privatizeLocally(d, {std::nan(""), 1.0}, noise), tessera::Error);
}

// Norms drawn from a log-normal: its median is e^μ. From a clip 20× too small, tracking the 0.5
// quantile with noisy counts reaches the median within a few percent.
TEST(AdaptiveClipping, ConvergesToTargetQuantile) {
  std::mt19937_64 rng(11);
  std::lognormal_distribution<double> norms(std::log(3.0), 0.5);
  NoiseSource noise(5);
  for (double gamma : {0.5, 0.9}) {
    AdaptiveClipping clipping(0.15, {gamma, 0.2, 100.0 / 20});
    const double trueQuantile = std::exp(std::log(3.0) + 0.5 * (gamma == 0.5 ? 0.0 : 1.2815516));
    std::vector<double> late;
    for (int round = 0; round < 400; ++round) {
      std::vector<double> sample(100);
      for (double& n : sample) n = norms(rng);
      clipping.update(sample, noise);
      if (round >= 300) late.push_back(clipping.clipNorm());
    }
    double mean = 0;
    for (double c : late) mean += c / late.size();
    EXPECT_NEAR(mean, trueQuantile, trueQuantile * 0.05) << "quantile " << gamma;
  }
}

TEST(AdaptiveClipping, NoiseMultiplierAccountsForTheBits) {
  // The paper's example: z = 1, σ_b = m/20 with m = 100 → z_Δ = (1 − 1/100)^(−1/2).
  EXPECT_NEAR(AdaptiveClipping::deltaNoiseMultiplier(1.0, 5.0), 1 / std::sqrt(1 - 0.01), 1e-12);
  EXPECT_EQ(AdaptiveClipping::deltaNoiseMultiplier(1.0, 0.0), 1.0);
  EXPECT_THROW(AdaptiveClipping::deltaNoiseMultiplier(2.0, 0.9), tessera::Error);
  EXPECT_THROW(AdaptiveClipping(0.0, {}), tessera::Error);
  EXPECT_THROW(AdaptiveClipping(1.0, {1.5, 0.2, 0}), tessera::Error);
}
