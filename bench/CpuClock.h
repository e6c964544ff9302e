// Effective core clock under load, for the "% of peak" column: the cpufreq/cpuinfo figure on
// a VM is often the base clock, while cores boost well above it, which would overstate
// achieved peak fractions (more than 100% on this project's CI machines).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

namespace tessera::bench {

// A chain of dependent integer adds retires one add per cycle on every x86-64 core, so the
// time it takes is a cycle counter that needs no privileged access. The chain runs on
// `threads` threads at once, as the benchmark does, because all-core boost is lower than
// single-core boost; the slowest thread's clock is returned.
inline double measureClockGhz(int threads) {
  constexpr uint64_t kIterations = 20'000'000;
  constexpr int kAddsPerIteration = 16;
  auto probe = [] {
    double best = 0.0;
    for (int attempt = 0; attempt < 5; ++attempt) {
      uint64_t x = 0;
      const auto t0 = std::chrono::steady_clock::now();
      for (uint64_t i = 0; i < kIterations; ++i) {
#if defined(__x86_64__)
        asm volatile(
            "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
            "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
            "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
            "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0"
            : "+r"(x));
#else
        return 0.0;
#endif
      }
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best = std::max(best, static_cast<double>(kIterations) * kAddsPerIteration / s / 1e9);
    }
    return best;
  };
  std::vector<double> ghz(static_cast<size_t>(std::max(1, threads)));
  std::vector<std::thread> workers;
  for (size_t t = 0; t < ghz.size(); ++t) workers.emplace_back([&, t] { ghz[t] = probe(); });
  for (auto& w : workers) w.join();
  return *std::min_element(ghz.begin(), ghz.end());
}

}  // namespace tessera::bench
