#include "tessera/image/Metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

namespace tessera::image {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Label values are stored as floats; a label is the nearest integer, so 2.9999 counts as 3.
// Values outside the int range (and NaN) count as background.
int labelOf(float v) {
  constexpr float kLimit = 2147483520.0f;  // largest float below INT_MAX
  return std::abs(v) <= kLimit ? static_cast<int>(std::lround(v)) : 0;
}

void ensureSameGrid(const Volume& pred, const Volume& truth, const char* what) {
  const Geometry& a = pred.geometry;
  const Geometry& b = truth.geometry;
  if (!a.sameGrid(b)) {
    std::ostringstream s;
    s << what << ": prediction grid " << a.describe() << " differs from reference grid " << b.describe();
    // describe() shows size and spacing only; say what else differs when those agree.
    if (a.describe() == b.describe()) {
      Geometry sameOrigin = b;
      sameOrigin.origin = a.origin;
      if (a.sameGrid(sameOrigin))
        s << " (origin " << a.origin[0] << ',' << a.origin[1] << ',' << a.origin[2] << " vs " << b.origin[0] << ','
          << b.origin[1] << ',' << b.origin[2] << " mm)";
      else
        s << " (direction differs)";
    }
    s << "; resample one onto the other first";
    throw Error(ErrorCode::BadImage, s.str());
  }
  for (const Volume* v : {&pred, &truth})
    if (v->voxels.size() != static_cast<size_t>(v->geometry.voxelCount()))
      throw Error(ErrorCode::BadImage, std::string(what) + ": volume " + v->geometry.describe() + " stores " +
                       std::to_string(v->voxels.size()) + " voxels");
}

struct Overlap {
  int64_t pred = 0;
  int64_t truth = 0;
  int64_t both = 0;
};

Overlap countOverlap(const Volume& pred, const Volume& truth, int label) {
  Overlap o;
  for (size_t i = 0; i < pred.voxels.size(); ++i) {
    const bool p = labelOf(pred.voxels[i]) == label;
    const bool t = labelOf(truth.voxels[i]) == label;
    o.pred += p;
    o.truth += t;
    o.both += p && t;
  }
  return o;
}

double dice(const Overlap& o) {
  if (o.pred + o.truth == 0) return 1.0;
  return 2.0 * static_cast<double>(o.both) / static_cast<double>(o.pred + o.truth);
}

double jaccard(const Overlap& o) {
  const int64_t unionCount = o.pred + o.truth - o.both;
  if (unionCount == 0) return 1.0;
  return static_cast<double>(o.both) / static_cast<double>(unionCount);
}

// ---- HD95 -------------------------------------------------------------------------------

// An index box [lo, hi] (inclusive); the distance work runs inside the union box of both
// masks only, which is exact because every surface voxel involved lies inside it.
struct Box {
  std::array<int64_t, 3> lo{std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::max(),
                            std::numeric_limits<int64_t>::max()};
  std::array<int64_t, 3> hi{-1, -1, -1};

  bool empty() const { return hi[0] < lo[0]; }
  void add(int64_t x, int64_t y, int64_t z) {
    const std::array<int64_t, 3> p{x, y, z};
    for (int a = 0; a < 3; ++a) {
      lo[a] = std::min(lo[a], p[a]);
      hi[a] = std::max(hi[a], p[a]);
    }
  }
  void add(const Box& b) {
    if (b.empty()) return;
    add(b.lo[0], b.lo[1], b.lo[2]);
    add(b.hi[0], b.hi[1], b.hi[2]);
  }
  int64_t extent(int a) const { return hi[a] - lo[a] + 1; }
};

// A binary mask cropped to a box; outside the box everything is background.
struct Mask {
  std::array<int64_t, 3> size{};
  std::vector<uint8_t> on;

  int64_t index(int64_t x, int64_t y, int64_t z) const { return x + size[0] * (y + size[1] * z); }
  bool at(int64_t x, int64_t y, int64_t z) const {
    if (x < 0 || y < 0 || z < 0 || x >= size[0] || y >= size[1] || z >= size[2]) return false;
    return on[static_cast<size_t>(index(x, y, z))] != 0;
  }
};

Mask cropMask(const Volume& v, int label, const Box& box) {
  Mask m;
  for (int a = 0; a < 3; ++a) m.size[a] = box.extent(a);
  m.on.assign(static_cast<size_t>(m.size[0] * m.size[1] * m.size[2]), 0);
  size_t i = 0;
  for (int64_t z = box.lo[2]; z <= box.hi[2]; ++z)
    for (int64_t y = box.lo[1]; y <= box.hi[1]; ++y)
      for (int64_t x = box.lo[0]; x <= box.hi[0]; ++x) m.on[i++] = labelOf(v.at(x, y, z)) == label;
  return m;
}

// Surface voxels: foreground with a 6-neighbour that is background or outside the image.
// Outside the crop box is background or outside the image, so the crop gives the same answer.
// An image axis of size 1 (a 2D image) has no neighbours along it; counting them as
// "outside" would make every voxel of a 2D mask a surface voxel instead of its contour.
std::vector<uint8_t> surfaceOf(const Mask& m, const std::array<int64_t, 3>& imageSize) {
  const int64_t sx = imageSize[0] > 1, sy = imageSize[1] > 1, sz = imageSize[2] > 1;
  if (!sx && !sy && !sz) return m.on;  // a one-voxel image: that voxel is its own surface
  std::vector<uint8_t> surface(m.on.size(), 0);
  for (int64_t z = 0; z < m.size[2]; ++z)
    for (int64_t y = 0; y < m.size[1]; ++y)
      for (int64_t x = 0; x < m.size[0]; ++x) {
        if (!m.at(x, y, z)) continue;
        const bool edge = (sx && (!m.at(x - 1, y, z) || !m.at(x + 1, y, z))) ||
                          (sy && (!m.at(x, y - 1, z) || !m.at(x, y + 1, z))) ||
                          (sz && (!m.at(x, y, z - 1) || !m.at(x, y, z + 1)));
        surface[static_cast<size_t>(m.index(x, y, z))] = edge;
      }
  return surface;
}

// Exact 1D squared distance transform (Felzenszwalb & Huttenlocher 2012) along `n` samples
// `stride` apart, with sample k at position k*spacing. f holds squared distances so far
// (+inf where no feature); it is updated in place. The scratch buffers avoid allocations.
struct Edt1D {
  std::vector<double> f, pos, z;
  std::vector<int64_t> v;

  void run(double* data, int64_t n, int64_t stride, double spacing) {
    f.resize(static_cast<size_t>(n));
    v.resize(static_cast<size_t>(n));
    z.resize(static_cast<size_t>(n) + 1);
    for (int64_t i = 0; i < n; ++i) f[static_cast<size_t>(i)] = data[i * stride];

    // Lower envelope of the parabolas rooted at finite samples only: +inf ones never win and
    // would turn the intersection arithmetic into inf - inf.
    int64_t k = -1;
    for (int64_t q = 0; q < n; ++q) {
      const double fq = f[static_cast<size_t>(q)];
      if (!std::isfinite(fq)) continue;
      const double xq = static_cast<double>(q) * spacing;
      double s = -kInf;
      while (k >= 0) {
        const int64_t p = v[static_cast<size_t>(k)];
        const double xp = static_cast<double>(p) * spacing;
        s = ((fq + xq * xq) - (f[static_cast<size_t>(p)] + xp * xp)) / (2.0 * (xq - xp));
        if (s > z[static_cast<size_t>(k)]) break;
        --k;
      }
      ++k;
      v[static_cast<size_t>(k)] = q;
      z[static_cast<size_t>(k)] = k == 0 ? -kInf : s;
      z[static_cast<size_t>(k) + 1] = kInf;
    }
    if (k < 0) return;  // no feature on this line: everything stays +inf

    int64_t j = 0;
    for (int64_t q = 0; q < n; ++q) {
      const double xq = static_cast<double>(q) * spacing;
      while (z[static_cast<size_t>(j) + 1] < xq) ++j;
      const int64_t p = v[static_cast<size_t>(j)];
      const double d = xq - static_cast<double>(p) * spacing;
      data[q * stride] = d * d + f[static_cast<size_t>(p)];
    }
  }
};

// Squared Euclidean distance (mm^2) from every voxel to the nearest feature voxel.
std::vector<double> squaredDistanceTo(const std::vector<uint8_t>& feature, const std::array<int64_t, 3>& size,
                                      const std::array<double, 3>& spacing) {
  std::vector<double> d(feature.size());
  for (size_t i = 0; i < feature.size(); ++i) d[i] = feature[i] ? 0.0 : kInf;
  const int64_t nx = size[0], ny = size[1], nz = size[2];
  Edt1D edt;
  for (int64_t z = 0; z < nz; ++z)
    for (int64_t y = 0; y < ny; ++y) edt.run(&d[static_cast<size_t>(nx * (y + ny * z))], nx, 1, spacing[0]);
  for (int64_t z = 0; z < nz; ++z)
    for (int64_t x = 0; x < nx; ++x) edt.run(&d[static_cast<size_t>(x + nx * ny * z)], ny, nx, spacing[1]);
  for (int64_t y = 0; y < ny; ++y)
    for (int64_t x = 0; x < nx; ++x) edt.run(&d[static_cast<size_t>(x + nx * y)], nz, nx * ny, spacing[2]);
  return d;
}

// 95th percentile by the nearest-rank definition: the smallest value with at least 95% of the
// values at or below it, i.e. sorted[ceil(0.95 n) - 1]. It is always one of the distances
// (no interpolation), so a one-voxel shift gives exactly one voxel spacing.
double percentile95(std::vector<double>& values) {
  const size_t rank = static_cast<size_t>(std::ceil(0.95 * static_cast<double>(values.size())));
  const size_t k = std::max<size_t>(rank, 1) - 1;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(k), values.end());
  return values[k];
}

// Directed 95th percentile distance from the surface voxels of `from` to the surface of `to`.
double directedHd95(const std::vector<uint8_t>& from, const std::vector<uint8_t>& to,
                    const std::array<int64_t, 3>& size, const std::array<double, 3>& spacing) {
  const std::vector<double> d2 = squaredDistanceTo(to, size, spacing);
  std::vector<double> distances;
  for (size_t i = 0; i < from.size(); ++i)
    if (from[i]) distances.push_back(std::sqrt(d2[i]));
  return percentile95(distances);
}

Box boxOf(const Volume& v, int label) {
  Box b;
  const auto& s = v.geometry.size;
  for (int64_t z = 0; z < s[2]; ++z)
    for (int64_t y = 0; y < s[1]; ++y)
      for (int64_t x = 0; x < s[0]; ++x)
        if (labelOf(v.at(x, y, z)) == label) b.add(x, y, z);
  return b;
}

// HD95 given each mask's bounding box (empty box = empty mask).
double hd95WithBoxes(const Volume& pred, const Volume& truth, int label, const Box& predBox, const Box& truthBox) {
  if (predBox.empty() && truthBox.empty()) return 0.0;
  if (predBox.empty() || truthBox.empty()) return kInf;
  Box box = predBox;
  box.add(truthBox);
  const Mask p = cropMask(pred, label, box);
  const Mask t = cropMask(truth, label, box);
  const auto ps = surfaceOf(p, pred.geometry.size);
  const auto ts = surfaceOf(t, pred.geometry.size);
  // Distances use the voxel spacing along each index axis; a rotation in the direction
  // matrix does not change lengths, so this is exact for any orthonormal direction.
  const auto& spacing = pred.geometry.spacing;
  return std::max(directedHd95(ps, ts, p.size, spacing), directedHd95(ts, ps, p.size, spacing));
}

}  // namespace

double diceScore(const Volume& pred, const Volume& truth, int label) {
  ensureSameGrid(pred, truth, "diceScore");
  return dice(countOverlap(pred, truth, label));
}

double jaccardScore(const Volume& pred, const Volume& truth, int label) {
  ensureSameGrid(pred, truth, "jaccardScore");
  return jaccard(countOverlap(pred, truth, label));
}

double hausdorff95(const Volume& pred, const Volume& truth, int label) {
  ensureSameGrid(pred, truth, "hausdorff95");
  return hd95WithBoxes(pred, truth, label, boxOf(pred, label), boxOf(truth, label));
}

std::map<int, LabelMetrics> evaluateLabels(const Volume& pred, const Volume& truth) {
  ensureSameGrid(pred, truth, "evaluateLabels");

  // One pass gathers counts and bounding boxes of every label, so many-label maps (an atlas
  // with 100+ regions) cost one scan plus small per-label crops.
  struct Stats {
    Overlap overlap;
    Box predBox, truthBox;
  };
  std::map<int, Stats> stats;
  const auto& s = pred.geometry.size;
  size_t i = 0;
  for (int64_t z = 0; z < s[2]; ++z)
    for (int64_t y = 0; y < s[1]; ++y)
      for (int64_t x = 0; x < s[0]; ++x, ++i) {
        const int p = labelOf(pred.voxels[i]);
        const int t = labelOf(truth.voxels[i]);
        if (p != 0) {
          Stats& st = stats[p];
          ++st.overlap.pred;
          st.predBox.add(x, y, z);
          if (p == t) ++st.overlap.both;
        }
        if (t != 0) {
          Stats& st = stats[t];
          ++st.overlap.truth;
          st.truthBox.add(x, y, z);
        }
      }

  const double ml = pred.geometry.voxelVolumeMm3() / 1000.0;
  std::map<int, LabelMetrics> result;
  for (const auto& [label, st] : stats) {
    LabelMetrics m;
    m.dice = dice(st.overlap);
    m.jaccard = jaccard(st.overlap);
    m.hd95Mm = hd95WithBoxes(pred, truth, label, st.predBox, st.truthBox);
    m.volumePredMl = static_cast<double>(st.overlap.pred) * ml;
    m.volumeTruthMl = static_cast<double>(st.overlap.truth) * ml;
    result[label] = m;
  }
  return result;
}

}  // namespace tessera::image
