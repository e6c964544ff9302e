#include "Phantom.h"

#include <cmath>
#include <random>

namespace tessera::test {

model::TrainingCase makePhantom(uint64_t seed, std::array<int64_t, 3> size, std::array<double, 3> spacing) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::normal_distribution<double> noise(0.0, 1.0);
  image::Geometry g;
  g.size = size;
  g.spacing = spacing;
  g.origin = {-10.0, 5.0, 20.0};
  model::TrainingCase c{image::Volume(g), image::Volume(g)};
  // Physical extent, so shapes are round in mm whatever the spacing.
  const double ex = size[0] * spacing[0], ey = size[1] * spacing[1], ez = size[2] * spacing[2];
  const double cx = ex * (0.35 + 0.3 * u(rng)), cy = ey * (0.35 + 0.3 * u(rng)), cz = ez * (0.4 + 0.2 * u(rng));
  const double rx = ex * (0.18 + 0.1 * u(rng)), ry = ey * (0.18 + 0.1 * u(rng)), rz = ez * (0.25 + 0.1 * u(rng));
  const double foreground = 100.0 + 40.0 * u(rng), background = 40.0 + 20.0 * u(rng);
  const double sigma = 8.0 + 4.0 * u(rng);
  for (int64_t z = 0; z < size[2]; ++z) {
    for (int64_t y = 0; y < size[1]; ++y) {
      for (int64_t x = 0; x < size[0]; ++x) {
        const double px = (x + 0.5) * spacing[0], py = (y + 0.5) * spacing[1], pz = (z + 0.5) * spacing[2];
        const double r = std::pow((px - cx) / rx, 2) + std::pow((py - cy) / ry, 2) + std::pow((pz - cz) / rz, 2);
        const bool inside = r <= 1.0;
        const double bias = 1.0 + 0.2 * std::sin(px / ex * 3.0);
        c.image.at(x, y, z) = static_cast<float>((inside ? foreground : background) * bias + sigma * noise(rng));
        c.labels.at(x, y, z) = inside ? 1.0f : 0.0f;
      }
    }
  }
  return c;
}

model::NetworkSpec tinySpec(int dims) {
  model::NetworkSpec spec;
  spec.dims = dims;
  spec.baseFeatures = 8;
  spec.depth = 3;
  spec.patch = {32, 32, 16};
  return spec;
}

}  // namespace tessera::test
