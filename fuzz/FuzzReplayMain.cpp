// Replay driver for fuzz targets in builds without libFuzzer: runs each seed, then
// `--iterations N` seeded random mutations (bit flips, truncation, splices, length-field
// smashing). A crash or sanitizer report fails the CTest entry; exceptions are the target's
// business and must be caught there.
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>

#include "FuzzTarget.h"

namespace {

std::string mutate(const std::string& seed, std::mt19937_64& rng) {
  std::string s = seed;
  std::uniform_int_distribution<int> kind(0, 5);
  const int rounds = 1 + static_cast<int>(rng() % 4);
  for (int r = 0; r < rounds; ++r) {
    if (s.empty()) s.push_back(static_cast<char>(rng()));
    const size_t pos = rng() % s.size();
    switch (kind(rng)) {
      case 0: s[pos] = static_cast<char>(s[pos] ^ (1u << (rng() % 8))); break;
      case 1: s.resize(pos); break;
      case 2: s.insert(pos, std::string(1 + rng() % 16, static_cast<char>(rng()))); break;
      case 3: s[pos] = static_cast<char>(rng()); break;
      case 4: {  // overwrite a 4- or 8-byte field with an extreme value, as length fields break
        const uint64_t values[] = {0, 1, 0x7fffffffULL, 0xffffffffULL, 0xffffffffffffffffULL,
                                   0x8000000000000000ULL};
        const uint64_t v = values[rng() % 6];
        for (size_t i = 0; i < 8 && pos + i < s.size(); ++i) s[pos + i] = static_cast<char>(v >> (8 * i));
        break;
      }
      default: s.erase(pos, rng() % (s.size() - pos + 1)); break;
    }
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  long iterations = 200;
  unsigned long long seed = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--iterations" && i + 1 < argc) iterations = std::atol(argv[++i]);
    else if (a == "--seed" && i + 1 < argc) seed = std::strtoull(argv[++i], nullptr, 10);
    else {
      std::cerr << "usage: " << argv[0] << " [--iterations N] [--seed S]\n";
      return 2;
    }
  }
  const auto seeds = tesseraFuzzSeeds();
  if (seeds.empty()) {
    std::cerr << "fuzz target has no seeds\n";
    return 1;
  }
  std::mt19937_64 rng(seed);
  for (const auto& s : seeds) LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  for (long i = 0; i < iterations; ++i) {
    const std::string input = mutate(seeds[rng() % seeds.size()], rng);
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
  }
  std::cout << "fuzz replay: " << seeds.size() << " seeds, " << iterations << " mutations, no crash\n";
  return 0;
}
