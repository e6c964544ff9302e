// Accountant cost: what the server pays to account 10^4 rounds, one step at a time (as it does per
// accepted update) and in one call, and answering ε after each step. Prints seconds; no pass/fail.
#include <chrono>
#include <cstdio>

#include "tessera/federation/RdpAccountant.h"

using namespace tessera::federation;

namespace {
double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}
}  // namespace

int main() {
  constexpr int kRounds = 10000;
  for (double q : {1.0, 0.04}) {
    auto start = std::chrono::steady_clock::now();
    RdpAccountant stepwise;
    for (int r = 0; r < kRounds; ++r) stepwise.addSteps(1.1, q);
    const double tSteps = secondsSince(start);

    start = std::chrono::steady_clock::now();
    RdpAccountant reported;
    double eps = 0;
    for (int r = 0; r < kRounds; ++r) {
      reported.addSteps(1.1, q);
      eps = reported.spent(1e-5).epsilon;
    }
    const double tReported = secondsSince(start);

    // Alternating (σ, q) defeats the per-pair cache: every step evaluates the series afresh.
    start = std::chrono::steady_clock::now();
    RdpAccountant alternating;
    for (int r = 0; r < kRounds; ++r) alternating.addSteps(r % 2 ? 1.1 : 1.2, q);
    const double tUncached = secondsSince(start);

    start = std::chrono::steady_clock::now();
    const double once = epsilonOf(1.1, q, kRounds, 1e-5).epsilon;
    const double tOnce = secondsSince(start);
    std::printf("q=%-5g %d rounds (%zu orders): step by step %.4f s, with eps after each %.4f s, "
                "alternating sigma (no cache) %.4f s, one call %.6f s; eps=%.4f (one call %.4f)\n",
                q, kRounds, stepwise.orders().size(), tSteps, tReported, tUncached, tOnce, eps, once);
  }
}
