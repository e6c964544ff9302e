#include "tessera/image/Resample.h"

#include <algorithm>
#include <cmath>

#include "tessera/image/ImageIO.h"

namespace tessera::image {

namespace {

// Source continuous index as an affine function of the target index:
// src = offset + column[0]*x + column[1]*y + column[2]*z. Both grids are affine, so computing
// it once replaces a 3x3 inverse per voxel.
struct IndexMap {
  std::array<double, 3> offset{};
  std::array<std::array<double, 3>, 3> column{};
};

IndexMap mapTargetToSource(const Geometry& source, const Geometry& target) {
  IndexMap m;
  m.offset = source.pointToIndex(target.indexToPoint({0.0, 0.0, 0.0}));
  for (int k = 0; k < 3; ++k) {
    std::array<double, 3> unit{0.0, 0.0, 0.0};
    unit[k] = 1.0;
    const auto p = source.pointToIndex(target.indexToPoint(unit));
    for (int r = 0; r < 3; ++r) m.column[k][r] = p[r] - m.offset[r];
  }
  return m;
}

// True when source axis r depends on target axis r only, as when only the spacing changes.
bool isAxisAligned(const IndexMap& m) {
  constexpr double kEps = 1e-9;
  for (int k = 0; k < 3; ++k)
    for (int r = 0; r < 3; ++r)
      if (r != k && std::abs(m.column[k][r]) > kEps) return false;
  return true;
}

// One axis of a sample position, clamped to the grid ("nearest edge value" outside).
struct AxisSample {
  int64_t lo = 0;
  int64_t hi = 0;
  float weight = 0.0f;  // of `hi`
};

AxisSample sampleAxis(double index, int64_t size, Interpolation interpolation) {
  const double clamped = std::clamp(index, 0.0, static_cast<double>(size - 1));
  AxisSample s;
  if (interpolation == Interpolation::Nearest) {
    s.lo = s.hi = static_cast<int64_t>(std::floor(clamped + 0.5));
    return s;
  }
  s.lo = static_cast<int64_t>(std::floor(clamped));
  s.hi = std::min(s.lo + 1, size - 1);
  s.weight = static_cast<float>(clamped - static_cast<double>(s.lo));
  return s;
}

float lerp(float a, float b, float w) { return a + (b - a) * w; }

float interpolate(const Volume& src, const AxisSample& sx, const AxisSample& sy, const AxisSample& sz) {
  const auto v = [&](int64_t x, int64_t y, int64_t z) { return src.at(x, y, z); };
  if (sx.lo == sx.hi && sy.lo == sy.hi && sz.lo == sz.hi) return v(sx.lo, sy.lo, sz.lo);
  const float c00 = lerp(v(sx.lo, sy.lo, sz.lo), v(sx.hi, sy.lo, sz.lo), sx.weight);
  const float c10 = lerp(v(sx.lo, sy.hi, sz.lo), v(sx.hi, sy.hi, sz.lo), sx.weight);
  const float c01 = lerp(v(sx.lo, sy.lo, sz.hi), v(sx.hi, sy.lo, sz.hi), sx.weight);
  const float c11 = lerp(v(sx.lo, sy.hi, sz.hi), v(sx.hi, sy.hi, sz.hi), sx.weight);
  return lerp(lerp(c00, c10, sy.weight), lerp(c01, c11, sy.weight), sz.weight);
}

// Fast path: every axis is sampled independently, so the per-axis positions and weights are
// computed once per axis instead of once per voxel.
void resampleAxisAligned(const Volume& src, const IndexMap& m, Interpolation interp, Volume& out) {
  const auto& ts = out.geometry.size;
  const auto& ss = src.geometry.size;
  std::array<std::vector<AxisSample>, 3> table;
  for (int a = 0; a < 3; ++a) {
    table[a].resize(static_cast<size_t>(ts[a]));
    for (int64_t i = 0; i < ts[a]; ++i)
      table[a][static_cast<size_t>(i)] =
          sampleAxis(m.offset[a] + m.column[a][a] * static_cast<double>(i), ss[a], interp);
  }
  float* dst = out.voxels.data();
  for (int64_t z = 0; z < ts[2]; ++z)
    for (int64_t y = 0; y < ts[1]; ++y)
      for (int64_t x = 0; x < ts[0]; ++x)
        *dst++ = interpolate(src, table[0][static_cast<size_t>(x)], table[1][static_cast<size_t>(y)],
                             table[2][static_cast<size_t>(z)]);
}

// General path (rotated or permuted grids): the source index advances by a constant step
// along each target row.
void resampleGeneral(const Volume& src, const IndexMap& m, Interpolation interp, Volume& out) {
  const auto& ts = out.geometry.size;
  const auto& ss = src.geometry.size;
  float* dst = out.voxels.data();
  for (int64_t z = 0; z < ts[2]; ++z)
    for (int64_t y = 0; y < ts[1]; ++y) {
      std::array<double, 3> p{};
      for (int r = 0; r < 3; ++r)
        p[r] = m.offset[r] + m.column[1][r] * static_cast<double>(y) + m.column[2][r] * static_cast<double>(z);
      for (int64_t x = 0; x < ts[0]; ++x) {
        const double fx = static_cast<double>(x);
        *dst++ = interpolate(src, sampleAxis(p[0] + m.column[0][0] * fx, ss[0], interp),
                             sampleAxis(p[1] + m.column[0][1] * fx, ss[1], interp),
                             sampleAxis(p[2] + m.column[0][2] * fx, ss[2], interp));
      }
    }
}

}  // namespace

Geometry withSpacing(const Geometry& g, const std::array<double, 3>& spacing) {
  Geometry out = g;
  for (int a = 0; a < 3; ++a) {
    if (!(spacing[a] >= 0.0) || !std::isfinite(spacing[a]))
      throw Error(ErrorCode::BadImage, "withSpacing: spacing " + std::to_string(spacing[a]) + " along axis " + std::to_string(a) +
                       " is not a finite value >= 0");
    if (spacing[a] == 0.0) continue;
    const double extent = static_cast<double>(g.size[a]) * g.spacing[a];
    out.size[a] = std::max<int64_t>(1, std::llround(extent / spacing[a]));
    out.spacing[a] = spacing[a];
  }
  return out;
}

Volume resample(const Volume& source, const Geometry& target, Interpolation interpolation) {
  const Geometry& sg = source.geometry;
  if (sg.voxelCount() <= 0 || source.voxels.size() != static_cast<size_t>(sg.voxelCount()))
    throw Error(ErrorCode::BadImage, "resample: source volume " + sg.describe() + " has " + std::to_string(source.voxels.size()) +
                     " voxels stored");
  if (target.voxelCount() <= 0 || target.voxelCount() > kMaxVoxels)
    throw Error(ErrorCode::BadImage, "resample: target grid " + target.describe() + " has no voxels or more than " +
                     std::to_string(kMaxVoxels));

  Volume out(target);
  out.modality = source.modality;
  out.bodyPart = source.bodyPart;
  const IndexMap m = mapTargetToSource(sg, target);
  if (isAxisAligned(m))
    resampleAxisAligned(source, m, interpolation, out);
  else
    resampleGeneral(source, m, interpolation, out);
  return out;
}

}  // namespace tessera::image
