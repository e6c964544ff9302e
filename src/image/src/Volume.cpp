#include "tessera/image/Volume.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace tessera::image {

namespace {

using Matrix3 = std::array<double, 9>;

// The matrix taking a continuous index to a physical offset: direction * diag(spacing).
Matrix3 indexToPhysical(const Geometry& g) {
  Matrix3 m{};
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) m[r * 3 + c] = g.direction[r * 3 + c] * g.spacing[c];
  return m;
}

// Inverse by the adjugate; grids are 3x3, so nothing more elaborate pays off.
Matrix3 invert(const Matrix3& m) {
  const double c00 = m[4] * m[8] - m[5] * m[7];
  const double c01 = m[5] * m[6] - m[3] * m[8];
  const double c02 = m[3] * m[7] - m[4] * m[6];
  const double det = m[0] * c00 + m[1] * c01 + m[2] * c02;
  if (det == 0.0 || !std::isfinite(det))
    throw Error(ErrorCode::BadImage, "geometry has a singular direction/spacing matrix (det = " + std::to_string(det) + ")");
  const double inv = 1.0 / det;
  return {c00 * inv,
          (m[2] * m[7] - m[1] * m[8]) * inv,
          (m[1] * m[5] - m[2] * m[4]) * inv,
          c01 * inv,
          (m[0] * m[8] - m[2] * m[6]) * inv,
          (m[2] * m[3] - m[0] * m[5]) * inv,
          c02 * inv,
          (m[1] * m[6] - m[0] * m[7]) * inv,
          (m[0] * m[4] - m[1] * m[3]) * inv};
}

bool closeRelative(double a, double b, double tolerance, double scale) {
  return std::abs(a - b) <= tolerance * std::max({std::abs(a), std::abs(b), scale});
}

}  // namespace

bool Geometry::sameGrid(const Geometry& other, double tolerance) const {
  if (size != other.size) return false;
  for (int i = 0; i < 3; ++i)
    if (!closeRelative(spacing[i], other.spacing[i], tolerance, 0.0)) return false;
  // Origins near 0 have no magnitude of their own to be relative to; the voxel size is the
  // natural scale for "the same place".
  const double voxelScale = (spacing[0] + spacing[1] + spacing[2]) / 3.0;
  for (int i = 0; i < 3; ++i)
    if (!closeRelative(origin[i], other.origin[i], tolerance, voxelScale)) return false;
  // Direction cosines are at most 1 in magnitude: compare them absolutely.
  for (int i = 0; i < 9; ++i)
    if (std::abs(direction[i] - other.direction[i]) > tolerance) return false;
  return true;
}

std::array<double, 3> Geometry::indexToPoint(const std::array<double, 3>& index) const {
  const Matrix3 m = indexToPhysical(*this);
  std::array<double, 3> p{};
  for (int r = 0; r < 3; ++r)
    p[r] = origin[r] + m[r * 3 + 0] * index[0] + m[r * 3 + 1] * index[1] + m[r * 3 + 2] * index[2];
  return p;
}

std::array<double, 3> Geometry::pointToIndex(const std::array<double, 3>& point) const {
  const Matrix3 inv = invert(indexToPhysical(*this));
  const std::array<double, 3> d{point[0] - origin[0], point[1] - origin[1], point[2] - origin[2]};
  std::array<double, 3> index{};
  for (int r = 0; r < 3; ++r) index[r] = inv[r * 3 + 0] * d[0] + inv[r * 3 + 1] * d[1] + inv[r * 3 + 2] * d[2];
  return index;
}

std::string Geometry::describe() const {
  std::ostringstream s;
  s << size[0] << 'x' << size[1] << 'x' << size[2] << " @ " << spacing[0] << 'x' << spacing[1] << 'x'
    << spacing[2] << " mm";
  return s.str();
}

Volume::Volume(const Geometry& g, float fill) : geometry(g) {
  for (int i = 0; i < 3; ++i)
    if (g.size[i] < 0) throw Error(ErrorCode::BadImage, "cannot create a volume of size " + g.describe());
  voxels.assign(static_cast<size_t>(g.voxelCount()), fill);
}

std::pair<float, float> Volume::valueRange() const {
  if (voxels.empty()) return {0.0f, 0.0f};
  const auto [lo, hi] = std::minmax_element(voxels.begin(), voxels.end());
  return {*lo, *hi};
}

Volume extractSlices(const Volume& volume, int axis, const std::vector<int64_t>& indices) {
  if (axis < 0 || axis > 2) throw Error(ErrorCode::BadImage, "extractSlices: axis " + std::to_string(axis) + " is not 0, 1 or 2");
  if (indices.empty()) throw Error(ErrorCode::BadImage, "extractSlices: no slice indices given");
  const Geometry& src = volume.geometry;
  for (const int64_t i : indices)
    if (i < 0 || i >= src.size[axis])
      throw Error(ErrorCode::BadImage, "extractSlices: slice " + std::to_string(i) + " is outside 0.." +
                       std::to_string(src.size[axis] - 1) + " along axis " + std::to_string(axis));

  Geometry g = src;
  g.size[axis] = static_cast<int64_t>(indices.size());
  std::array<double, 3> first{0.0, 0.0, 0.0};
  first[axis] = static_cast<double>(indices[0]);
  g.origin = src.indexToPoint(first);
  // A descending list walks the axis backwards: keep the spacing positive and flip the axis
  // direction instead, so indexToPoint still gives each slice its true position. A step of 0
  // (a repeated index) or a single slice leaves the spacing as it was.
  if (indices.size() >= 2 && indices[1] != indices[0]) {
    const int64_t step = indices[1] - indices[0];
    g.spacing[axis] = src.spacing[axis] * static_cast<double>(std::llabs(step));
    if (step < 0)
      for (int r = 0; r < 3; ++r) g.direction[r * 3 + axis] = -g.direction[r * 3 + axis];
  }

  Volume out(g);
  out.modality = volume.modality;
  out.bodyPart = volume.bodyPart;
  for (int64_t z = 0; z < g.size[2]; ++z)
    for (int64_t y = 0; y < g.size[1]; ++y)
      for (int64_t x = 0; x < g.size[0]; ++x) {
        std::array<int64_t, 3> s{x, y, z};
        s[axis] = indices[static_cast<size_t>(s[axis])];
        out.at(x, y, z) = volume.at(s[0], s[1], s[2]);
      }
  return out;
}

}  // namespace tessera::image
