// Secure aggregation's cost per round against plain summation (issue 12, "speed and cost"): CPU
// seconds on a site and on the server, and bytes on the wire per site, for 1 M and 30 M
// parameters and 3, 10 and 50 sites, every party simulated in this one process, one after the
// other (so CPU seconds are per party, not a wall-clock round time). Prints a table; no pass/fail.
//
// Plain: a site encodes its update (same fixed point, so the server's sum is comparable) and
// uploads 4 bytes a parameter; the server adds m vectors. Secure: the whole protocol
// (SecureAggregation.h), once with every site and once with one site dropping out after key
// sharing (the server then rebuilds its key and removes its pairwise masks).
//
// Usage: tessera_bench_secagg [--all] [--params N,...] [--sites N,...]
// Without --all, 30 M × 50 sites is not run (≈ 50·50 ChaCha20 expansions of 120 MB); its row is
// extrapolated from 1 M × 50 (cost linear in the parameter count) and marked "extrapolated".
#include <cstdio>
#include <cstring>
#include <ctime>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tessera/federation/FixedPoint.h"
#include "tessera/federation/SecureAggregation.h"

using namespace tessera::federation;

namespace {

double threadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
}

std::vector<uint64_t> parseList(const char* text) {
  std::vector<uint64_t> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(std::stoull(item));
  return out;
}

std::vector<float> update(uint32_t site, uint64_t length) {
  std::vector<float> v(length);
  std::mt19937 rng(site);
  std::normal_distribution<float> normal(0.0f, 1e-3f);
  for (float& x : v) x = normal(rng);
  return v;
}

struct Row {
  double plainSite = 0, plainServer = 0, secSite = 0, secSiteMax = 0, secServer = 0, secServerDropout = 0;
  double plainBytes = 0, secUp = 0, secDown = 0;
  bool extrapolated = false;
};

Row measure(uint64_t params, uint32_t sites) {
  Row row;
  const FixedPointCodec codec(1.0, sites);
  std::vector<std::vector<float>> updates;
  // Inputs are made once per site and reused: making them is training's cost, not aggregation's.
  for (uint32_t id = 1; id <= std::min<uint32_t>(sites, 3); ++id) updates.push_back(update(id, params));
  auto floatsOf = [&](uint32_t id) -> const std::vector<float>& { return updates[(id - 1) % updates.size()]; };

  // Plain.
  std::vector<uint32_t> plainSum;
  for (uint32_t id = 1; id <= sites; ++id) {
    double t = threadCpuSeconds();
    const auto encoded = codec.encode(floatsOf(id));
    row.plainSite += threadCpuSeconds() - t;
    t = threadCpuSeconds();
    addInto(plainSum, encoded);
    row.plainServer += threadCpuSeconds() - t;
  }
  row.plainSite /= sites;
  row.plainBytes = 4.0 * params;

  SecAggConfig config;
  config.siteCount = sites;
  config.threshold = sites / 2 + 1;
  config.length = params;
  double encodeSeconds = 0;
  auto input = [&](uint32_t id) {
    const double t = threadCpuSeconds();
    auto encoded = codec.encode(floatsOf(id));
    encodeSeconds += threadCpuSeconds() - t;
    return encoded;
  };
  config.round = SecAggConfig::randomRoundId();
  const auto full = runSecureAggregationRound(config, input);
  if (full.sum != plainSum) std::fprintf(stderr, "MISMATCH: secure sum differs from the plain sum\n");
  // The runner times encoding outside the sites' share; add it back so both columns include it.
  row.secSite = full.siteCpuSecondsMean + encodeSeconds / sites;
  row.secSiteMax = full.siteCpuSecondsMax + encodeSeconds / sites;
  row.secServer = full.serverCpuSeconds;
  row.secUp = static_cast<double>(full.bytesUpPerSite);
  row.secDown = static_cast<double>(full.bytesDownPerSite);

  SecAggDropouts dropouts;
  dropouts.beforeMaskedInput = {sites};
  config.round = SecAggConfig::randomRoundId();
  row.secServerDropout = runSecureAggregationRound(config, input, dropouts).serverCpuSeconds;
  return row;
}

void print(uint64_t params, uint32_t sites, const Row& r) {
  std::printf("%5.1fM %5u %3u | %8.3f %8.3f %8.3f %6.1fx | %8.3f %8.3f %8.3f | %9.2f %9.2f %9.3f %s\n",
              params / 1e6, sites, sites / 2 + 1, r.plainSite, r.secSite, r.secSiteMax,
              r.plainSite > 0 ? r.secSite / r.plainSite : 0.0, r.plainServer, r.secServer, r.secServerDropout,
              r.plainBytes / 1e6, r.secUp / 1e6, r.secDown / 1e6, r.extrapolated ? "extrapolated" : "");
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  bool all = false;
  std::vector<uint64_t> paramsList{1000000, 30000000}, sitesList{3, 10, 50};
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--all")) all = true;
    else if (!std::strcmp(argv[i], "--params") && i + 1 < argc) paramsList = parseList(argv[++i]);
    else if (!std::strcmp(argv[i], "--sites") && i + 1 < argc) sitesList = parseList(argv[++i]);
    else {
      std::fprintf(stderr, "usage: %s [--all] [--params N,...] [--sites N,...]\n", argv[0]);
      return 2;
    }
  }
  std::printf("CPU seconds per party per round (site: mean and max over sites; server: all sites; drop: one site\n"
              "dropped after key sharing); MB on the wire per site (plain: float32 upload; secure: up and down).\n");
  std::printf("params sites   t | site:plain   secure  sec.max  ratio | srv:plain   secure     drop |"
              "  MB plain    MB up   MB down\n");
  std::vector<std::pair<uint32_t, Row>> measuredAtSmallest;
  const uint64_t smallest = paramsList.front();
  for (uint64_t params : paramsList) {
    for (uint64_t sites : sitesList) {
      if (!all && params >= 30000000 && sites >= 50) {
        for (const auto& [s, base] : measuredAtSmallest) {
          if (s != sites) continue;
          const double k = static_cast<double>(params) / smallest;
          Row r = base;
          r.plainSite *= k, r.plainServer *= k, r.secSite *= k, r.secSiteMax *= k, r.secServer *= k;
          r.secServerDropout *= k, r.plainBytes *= k;
          // Masked input and share traffic scale differently: only the masked input grows with k.
          r.secUp = (r.secUp - 4.0 * smallest) + 4.0 * params;
          r.extrapolated = true;
          print(params, static_cast<uint32_t>(sites), r);
        }
        continue;
      }
      const Row r = measure(params, static_cast<uint32_t>(sites));
      if (params == smallest) measuredAtSmallest.emplace_back(static_cast<uint32_t>(sites), r);
      print(params, static_cast<uint32_t>(sites), r);
    }
  }
  return 0;
}
