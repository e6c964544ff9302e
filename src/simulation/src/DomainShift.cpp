#include "tessera/simulation/DomainShift.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

#include "tessera/image/Resample.h"

namespace tessera::simulation {

std::string DomainShift::describe() const {
  char text[200];
  std::snprintf(text, sizeof text, "gamma %.2f, bias field ±%.0f%%, noise %.0f%%, resolution %.1fx, scale %.1f", gamma,
                biasAmplitude * 100, noiseFraction * 100, resolutionFactor, intensityScale);
  return text;
}

DomainShift siteShift(int index) {
  static const DomainShift kScanners[] = {
      {"scanner A (bright, clean)", 0.7, 0.0, 0.02, 1.0, 1.0},
      {"scanner B (dark, bias field)", 1.5, 0.25, 0.04, 1.0, 2.5},
      {"scanner C (low resolution, noisy)", 1.0, 0.10, 0.07, 2.0, 0.6},
  };
  DomainShift s = kScanners[index % 3];
  if (index >= 3) {
    // Further sites: the same scanner families with other settings.
    const int round = index / 3;
    s.name += " #" + std::to_string(round + 1);
    s.gamma *= 1.0 + 0.1 * round;
    s.noiseFraction += 0.01 * round;
  }
  return s;
}

image::Volume applyShift(const image::Volume& volume, const DomainShift& shift, uint64_t seed) {
  image::Volume out = volume;
  const auto& g = out.geometry;
  if (shift.resolutionFactor > 1.0) {
    image::Geometry coarse = g;
    for (int a = 0; a < 2; ++a) {
      coarse.size[a] = std::max<int64_t>(1, static_cast<int64_t>(std::lround(g.size[a] / shift.resolutionFactor)));
      coarse.spacing[a] = g.spacing[a] * static_cast<double>(g.size[a]) / static_cast<double>(coarse.size[a]);
    }
    // Keep the physical centre of the first voxel consistent: origin moves by half the change.
    const auto firstCentre = g.indexToPoint({(coarse.spacing[0] / g.spacing[0] - 1) / 2,
                                             (coarse.spacing[1] / g.spacing[1] - 1) / 2, 0});
    coarse.origin = firstCentre;
    out = image::resample(image::resample(out, coarse, image::Interpolation::Linear), g, image::Interpolation::Linear);
  }
  const auto [lo, hi] = out.valueRange();
  const double range = std::max(1e-6, double(hi) - double(lo));
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0.0, shift.noiseFraction * range);
  for (int64_t z = 0; z < g.size[2]; ++z) {
    for (int64_t y = 0; y < g.size[1]; ++y) {
      for (int64_t x = 0; x < g.size[0]; ++x) {
        float& v = out.at(x, y, z);
        double value = std::clamp((double(v) - lo) / range, 0.0, 1.0);
        value = std::pow(value, shift.gamma);
        const double fx = g.size[0] > 1 ? double(x) / double(g.size[0] - 1) : 0.5;
        const double fy = g.size[1] > 1 ? double(y) / double(g.size[1] - 1) : 0.5;
        value *= 1.0 + shift.biasAmplitude * ((fx - 0.5) + (fy - 0.5));
        if (shift.noiseFraction > 0) value += noise(rng) / range;
        v = static_cast<float>(std::max(0.0, value) * range * shift.intensityScale);
      }
    }
  }
  return out;
}

}  // namespace tessera::simulation
