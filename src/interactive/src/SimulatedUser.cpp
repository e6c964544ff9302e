#include "tessera/interactive/SimulatedUser.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "tessera/common/Error.h"
#include "tessera/image/Metrics.h"
#include "tessera/interactive/Session.h"

namespace tessera::interactive {

namespace {

struct Region {
  std::vector<int64_t> voxels;  // linear indices
  bool positive = true;
};

// Squared distance transform along one line (Felzenszwalb & Huttenlocher), with sample positions
// i * step so anisotropic spacing stays exact.
void distanceAlongLine(std::vector<double>& f, double step, std::vector<double>& d, std::vector<int64_t>& v,
                       std::vector<double>& z) {
  const int64_t n = static_cast<int64_t>(f.size());
  d.resize(f.size());
  v.resize(f.size());
  z.resize(f.size() + 1);
  auto pos = [step](int64_t i) { return static_cast<double>(i) * step; };
  int64_t k = 0;
  v[0] = 0;
  z[0] = -std::numeric_limits<double>::infinity();
  z[1] = std::numeric_limits<double>::infinity();
  auto meet = [&](int64_t q, int64_t p) {
    return ((f[static_cast<size_t>(q)] + pos(q) * pos(q)) - (f[static_cast<size_t>(p)] + pos(p) * pos(p))) /
           (2.0 * (pos(q) - pos(p)));
  };
  for (int64_t q = 1; q < n; ++q) {
    // z[0] is -inf, so k never drops below 0.
    double s = meet(q, v[static_cast<size_t>(k)]);
    while (s <= z[static_cast<size_t>(k)]) {
      --k;
      s = meet(q, v[static_cast<size_t>(k)]);
    }
    ++k;
    v[static_cast<size_t>(k)] = q;
    z[static_cast<size_t>(k)] = s;
    z[static_cast<size_t>(k) + 1] = std::numeric_limits<double>::infinity();
  }
  k = 0;
  for (int64_t q = 0; q < n; ++q) {
    while (z[static_cast<size_t>(k) + 1] < pos(q)) ++k;
    const int64_t p = v[static_cast<size_t>(k)];
    const double dx = pos(q) - pos(p);
    d[static_cast<size_t>(q)] = dx * dx + f[static_cast<size_t>(p)];
  }
  f.swap(d);
}

// The region voxel farthest from the region's border; returns {linear index, distance in mm}.
std::pair<int64_t, double> deepestVoxel(const Region& region, const image::Geometry& g) {
  std::array<int64_t, 3> lo{g.size[0], g.size[1], g.size[2]}, hi{-1, -1, -1};
  auto coords = [&g](int64_t i) {
    return std::array<int64_t, 3>{i % g.size[0], (i / g.size[0]) % g.size[1], i / (g.size[0] * g.size[1])};
  };
  for (int64_t i : region.voxels) {
    const auto c = coords(i);
    for (int a = 0; a < 3; ++a) {
      lo[a] = std::min(lo[a], c[a]);
      hi[a] = std::max(hi[a], c[a]);
    }
  }
  // One voxel of padding on every side: every line then starts and ends outside the region, and
  // the image's edge counts as border.
  std::array<int64_t, 3> n{};
  for (int a = 0; a < 3; ++a) n[a] = hi[a] - lo[a] + 3;
  auto boxIndex = [&](int64_t x, int64_t y, int64_t z) { return x + n[0] * (y + n[1] * z); };
  const double inf = 1e30;
  std::vector<double> dist(static_cast<size_t>(n[0] * n[1] * n[2]), 0.0);
  for (int64_t i : region.voxels) {
    const auto c = coords(i);
    dist[static_cast<size_t>(boxIndex(c[0] - lo[0] + 1, c[1] - lo[1] + 1, c[2] - lo[2] + 1))] = inf;
  }
  std::vector<double> line, d, z;
  std::vector<int64_t> v;
  for (int axis = 0; axis < 3; ++axis) {
    const int a1 = (axis + 1) % 3, a2 = (axis + 2) % 3;
    line.resize(static_cast<size_t>(n[axis]));
    for (int64_t u = 0; u < n[a2]; ++u) {
      for (int64_t w = 0; w < n[a1]; ++w) {
        std::array<int64_t, 3> c{};
        c[a1] = w;
        c[a2] = u;
        for (int64_t t = 0; t < n[axis]; ++t) {
          c[axis] = t;
          line[static_cast<size_t>(t)] = dist[static_cast<size_t>(boxIndex(c[0], c[1], c[2]))];
        }
        distanceAlongLine(line, g.spacing[axis], d, v, z);
        for (int64_t t = 0; t < n[axis]; ++t) {
          c[axis] = t;
          dist[static_cast<size_t>(boxIndex(c[0], c[1], c[2]))] = line[static_cast<size_t>(t)];
        }
      }
    }
  }
  // Among equally deep voxels (a box has a whole core of them) the one nearest the region's
  // centroid, then the first in voxel order: a click in the middle, deterministically.
  std::array<double, 3> centroid{0, 0, 0};
  for (int64_t i : region.voxels) {
    const auto c = coords(i);
    for (int a = 0; a < 3; ++a) centroid[a] += static_cast<double>(c[a]) * g.spacing[a];
  }
  for (double& c : centroid) c /= static_cast<double>(region.voxels.size());
  int64_t best = region.voxels.front();
  double bestDistance = -1.0, bestOffCentre = 0.0;
  std::vector<int64_t> sorted = region.voxels;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i : sorted) {
    const auto c = coords(i);
    const double value = dist[static_cast<size_t>(boxIndex(c[0] - lo[0] + 1, c[1] - lo[1] + 1, c[2] - lo[2] + 1))];
    if (value < bestDistance) continue;
    double offCentre = 0.0;
    for (int a = 0; a < 3; ++a) offCentre += std::pow(static_cast<double>(c[a]) * g.spacing[a] - centroid[a], 2);
    if (value > bestDistance || offCentre < bestOffCentre) {
      bestDistance = value;
      bestOffCentre = offCentre;
      best = i;
    }
  }
  return {best, std::sqrt(bestDistance)};
}

// The largest 6-connected component of voxels where `isError` holds; ties go to the component
// whose first voxel comes first.
Region largestComponent(const image::Geometry& g, const std::vector<uint8_t>& isError, bool positive) {
  std::vector<uint8_t> seen(isError.size(), 0);
  Region best;
  best.positive = positive;
  std::vector<int64_t> queue;
  const int64_t sx = g.size[0], sy = g.size[1], sz = g.size[2];
  for (int64_t start = 0; start < static_cast<int64_t>(isError.size()); ++start) {
    if (!isError[static_cast<size_t>(start)] || seen[static_cast<size_t>(start)]) continue;
    queue.clear();
    queue.push_back(start);
    seen[static_cast<size_t>(start)] = 1;
    for (size_t head = 0; head < queue.size(); ++head) {
      const int64_t i = queue[head];
      const int64_t x = i % sx, y = (i / sx) % sy, z = i / (sx * sy);
      const int64_t neighbours[6][2] = {{x > 0, i - 1},           {x + 1 < sx, i + 1},
                                        {y > 0, i - sx},          {y + 1 < sy, i + sx},
                                        {z > 0, i - sx * sy},     {z + 1 < sz, i + sx * sy}};
      for (const auto& [valid, j] : neighbours) {
        if (valid && isError[static_cast<size_t>(j)] && !seen[static_cast<size_t>(j)]) {
          seen[static_cast<size_t>(j)] = 1;
          queue.push_back(j);
        }
      }
    }
    if (queue.size() > best.voxels.size()) best.voxels = queue;
  }
  return best;
}

}  // namespace

std::optional<ErrorRegionClick> nextClick(const image::Volume& mask, const image::Volume& truth, int label) {
  if (mask.geometry.size != truth.geometry.size) {
    throw Error(ErrorCode::BadRequest,
                "simulated user: mask " + mask.geometry.describe() + " and truth " + truth.geometry.describe() + " differ in size");
  }
  const auto target = static_cast<float>(label);
  std::vector<uint8_t> missed(mask.voxels.size()), extra(mask.voxels.size());
  for (size_t i = 0; i < mask.voxels.size(); ++i) {
    const bool predicted = mask.voxels[i] == target, actual = truth.voxels[i] == target;
    missed[i] = actual && !predicted;
    extra[i] = predicted && !actual;
  }
  const Region misses = largestComponent(mask.geometry, missed, true);
  const Region falsePositives = largestComponent(mask.geometry, extra, false);
  const Region& region = falsePositives.voxels.size() > misses.voxels.size() ? falsePositives : misses;
  if (region.voxels.empty()) return std::nullopt;
  const auto [index, distance] = deepestVoxel(region, mask.geometry);
  const auto& g = mask.geometry;
  ErrorRegionClick result;
  result.click.voxel = {index % g.size[0], (index / g.size[0]) % g.size[1], index / (g.size[0] * g.size[1])};
  result.click.positive = region.positive;
  result.regionVoxels = static_cast<int64_t>(region.voxels.size());
  result.borderDistanceMm = distance;
  return result;
}

int clicksToReach(const std::vector<double>& dicePerClick, double threshold, int maxClicks, bool* reached) {
  for (size_t n = 0; n < dicePerClick.size(); ++n) {
    if (dicePerClick[n] >= threshold) {
      if (reached) *reached = true;
      return static_cast<int>(n);
    }
  }
  if (reached) *reached = false;
  return maxClicks + 1;
}

nlohmann::json toJson(const ClickLoopResult& r) {
  return {{"noc85", r.noc85},
          {"noc90", r.noc90},
          {"reached85", r.reached85},
          {"reached90", r.reached90},
          {"clicks", r.clicksUsed()},
          {"dice_per_click", r.dicePerClick},
          {"seconds_per_click", r.secondsPerClick}};
}

ClickLoopResult runClickLoop(const image::Volume& initialMask, const image::Volume& truth, const ApplyClick& apply,
                             const ClickLoopOptions& options) {
  ClickLoopResult result;
  image::Volume mask = initialMask;
  result.dicePerClick.push_back(image::diceScore(mask, truth, options.label));
  while (result.dicePerClick.back() < options.targetDice && result.clicksUsed() < options.maxClicks) {
    const auto next = nextClick(mask, truth, options.label);
    if (!next) break;
    const auto started = std::chrono::steady_clock::now();
    mask = apply(next->click);
    result.secondsPerClick.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    result.clicks.push_back(next->click);
    result.dicePerClick.push_back(image::diceScore(mask, truth, options.label));
  }
  result.noc85 = clicksToReach(result.dicePerClick, 0.85, options.maxClicks, &result.reached85);
  result.noc90 = clicksToReach(result.dicePerClick, 0.90, options.maxClicks, &result.reached90);
  return result;
}

ClickLoopResult runClickLoop(Session& session, const image::Volume& truth, const ClickLoopOptions& options) {
  return runClickLoop(
      session.mask(), truth,
      [&session](const nn::Click& click) {
        session.clickVoxel(click.voxel, click.positive);
        return session.mask();
      },
      options);
}

}  // namespace tessera::interactive
