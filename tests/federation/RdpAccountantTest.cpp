// The accountant against values published by Opacus' and TF-Privacy's own tests, so a study's ε
// means what it means there.
#include <gtest/gtest.h>

#include <cmath>

#include "tessera/common/Error.h"
#include "tessera/federation/RdpAccountant.h"

using namespace tessera::federation;

namespace {

// TF-Privacy's rdp_accountant_test orders.
std::vector<double> tfPrivacyOrders() {
  std::vector<double> orders = {1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5};
  for (int a = 5; a < 64; ++a) orders.push_back(a);
  for (double a : {128, 256, 512}) orders.push_back(a);
  return orders;
}

}  // namespace

// Opacus' test_rdp_accountant: σ = 1.5, q = 0.04, 90 epochs = 2250 steps, δ = 1e-5, default orders.
TEST(RdpAccountant, MatchesOpacusReferenceValue) {
  RdpAccountant accountant;
  for (int step = 0; step < 2250; ++step) accountant.addSteps(1.5, 0.04);
  const auto spent = accountant.spent(1e-5, RdpConversion::Balle);
  EXPECT_NEAR(spent.epsilon, 7.32911117143, 7.3291 * 1e-4);
  // Composition is additive: one call with 2250 steps is the same account.
  EXPECT_NEAR(epsilonOf(1.5, 0.04, 2250, 1e-5).epsilon, spent.epsilon, 1e-9);
}

// TF-Privacy's test_compute_eps_tight (Balle) and the classic conversion on the same RDP.
TEST(RdpAccountant, MatchesTfPrivacyBothConversions) {
  const auto orders = tfPrivacyOrders();
  const auto balle = epsilonOf(1.3, 0.0025, 6000, 1e-5, RdpConversion::Balle, orders);
  EXPECT_NEAR(balle.epsilon, 0.72422, 0.72422 * 1e-3);
  EXPECT_EQ(balle.bestOrder, 19);
  const auto classic = epsilonOf(1.3, 0.0025, 6000, 1e-5, RdpConversion::Classic, orders);
  EXPECT_NEAR(classic.epsilon, 0.94187, 0.94187 * 1e-3);
  EXPECT_LT(balle.epsilon, classic.epsilon);
}

// Opacus' get_noise_multiplier test: ε = 8, δ = 1e-5, q = 0.04, 90 epochs → σ ≈ 1.416 (Opacus stops
// at ε within 0.01 of the target, so its σ is a little above the exact one).
TEST(RdpAccountant, NoiseSearchFindsOpacusSigma) {
  const double sigma = noiseMultiplierFor(8, 1e-5, 0.04, 2250);
  EXPECT_NEAR(sigma, 1.416, 1.416 * 2e-3);
  EXPECT_LE(epsilonOf(sigma, 0.04, 2250, 1e-5).epsilon, 8.0);
  EXPECT_GT(epsilonOf(sigma - 1e-4, 0.04, 2250, 1e-5).epsilon, 8.0);
}

// Without sampling there is no amplification: every step costs α/(2σ²) at each order.
TEST(RdpAccountant, FullParticipationIsPlainGaussian) {
  RdpAccountant accountant({2, 4.5, 32});
  accountant.addSteps(2.0, 1.0, 10);
  EXPECT_DOUBLE_EQ(accountant.rdp()[0], 10 * 2 / 8.0);
  EXPECT_DOUBLE_EQ(accountant.rdp()[1], 10 * 4.5 / 8.0);
  EXPECT_DOUBLE_EQ(accountant.rdp()[2], 10 * 32 / 8.0);
  // Classic ε is then min over α of Tα/(2σ²) − log δ/(α−1), here reached at one of the orders.
  const double expected = std::min({2.5 + std::log(1e5) / 1, 5.625 + std::log(1e5) / 3.5, 40 + std::log(1e5) / 31});
  EXPECT_NEAR(accountant.spent(1e-5, RdpConversion::Classic).epsilon, expected, 1e-12);
}

// Sampling amplifies privacy: at the same σ a smaller q gives a smaller RDP, and the fractional-order
// series lies between its integer neighbours (RDP grows with α).
TEST(RdpAccountant, SubsamplingAndOrdersAreMonotone) {
  EXPECT_LT(rdpOfSubsampledGaussian(0.01, 1.0, 8), rdpOfSubsampledGaussian(0.1, 1.0, 8));
  EXPECT_LT(rdpOfSubsampledGaussian(0.1, 1.0, 8), rdpOfSubsampledGaussian(1.0, 1.0, 8));
  const double r3 = rdpOfSubsampledGaussian(0.05, 1.1, 3), r35 = rdpOfSubsampledGaussian(0.05, 1.1, 3.5),
               r4 = rdpOfSubsampledGaussian(0.05, 1.1, 4);
  EXPECT_LT(r3, r35);
  EXPECT_LT(r35, r4);
  EXPECT_EQ(rdpOfSubsampledGaussian(0.0, 1.0, 8), 0.0);
}

TEST(RdpAccountant, SpentAfterDoesNotRecord) {
  RdpAccountant accountant;
  accountant.addSteps(1.0, 1.0, 3);
  const auto before = accountant.spent(1e-5);
  const auto after = accountant.spentAfter(1.0, 1.0, 1, 1e-5);
  EXPECT_GT(after.epsilon, before.epsilon);
  EXPECT_EQ(accountant.spent(1e-5).epsilon, before.epsilon);
  accountant.addSteps(1.0, 1.0, 1);
  EXPECT_DOUBLE_EQ(accountant.spent(1e-5).epsilon, after.epsilon);
}

TEST(RdpAccountant, RefusesBadArguments) {
  EXPECT_THROW(rdpOfSubsampledGaussian(1.5, 1.0, 2), tessera::Error);
  EXPECT_THROW(rdpOfSubsampledGaussian(0.5, 0.0, 2), tessera::Error);
  EXPECT_THROW(rdpOfSubsampledGaussian(0.5, 1.0, 1.0), tessera::Error);
  EXPECT_THROW(epsilonOf(1.0, 0.5, 10, 0.0), tessera::Error);
  EXPECT_THROW(RdpAccountant(std::vector<double>{}), tessera::Error);
}
