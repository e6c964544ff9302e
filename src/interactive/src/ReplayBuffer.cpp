#include "tessera/interactive/ReplayBuffer.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "tessera/common/Error.h"

namespace tessera::interactive {

ReplaySampling replaySamplingFromName(std::string_view name) {
  if (name == "uniform") return ReplaySampling::Uniform;
  if (name == "recent") return ReplaySampling::Recent;
  if (name == "stratified") return ReplaySampling::Stratified;
  throw Error(ErrorCode::BadRequest,
              "replay sampling '" + std::string(name.substr(0, 40)) + "' is not one of uniform, recent, stratified");
}

std::string_view replaySamplingName(ReplaySampling sampling) {
  switch (sampling) {
    case ReplaySampling::Uniform: return "uniform";
    case ReplaySampling::Recent: return "recent";
    case ReplaySampling::Stratified: return "stratified";
  }
  return "uniform";
}

std::vector<std::string> ReplayBuffer::sample(size_t count, ReplaySampling sampling, uint64_t seed) const {
  const size_t n = names_.size();
  if (count >= n) return names_;
  if (count == 0) return {};
  std::vector<size_t> chosen;
  // std::uniform_int_distribution differs between standard libraries; a plain modulo of the
  // 64-bit Mersenne twister keeps a seed's choice the same everywhere (the bias is negligible).
  std::mt19937_64 rng(seed);
  const auto below = [&rng](size_t bound) { return static_cast<size_t>(rng() % bound); };
  switch (sampling) {
    case ReplaySampling::Recent:
      for (size_t i = n - count; i < n; ++i) chosen.push_back(i);
      break;
    case ReplaySampling::Uniform: {
      // Partial Fisher-Yates: the first `count` of a random permutation.
      std::vector<size_t> order(n);
      std::iota(order.begin(), order.end(), size_t{0});
      for (size_t i = 0; i < count; ++i) std::swap(order[i], order[i + below(n - i)]);
      chosen.assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(count));
      break;
    }
    case ReplaySampling::Stratified:
      // Stratum s covers [s*n/count, (s+1)*n/count): non-empty since count < n.
      for (size_t s = 0; s < count; ++s) {
        const size_t begin = s * n / count, end = (s + 1) * n / count;
        chosen.push_back(begin + below(end - begin));
      }
      break;
  }
  std::sort(chosen.begin(), chosen.end());
  std::vector<std::string> out;
  out.reserve(chosen.size());
  for (size_t i : chosen) out.push_back(names_[i]);
  return out;
}

}  // namespace tessera::interactive
