#include <algorithm>
#include <cmath>
#include <limits>

#include "SliceFields.h"

namespace tessera::interactive::detail {

namespace {

// Bilinear sample of a width x height buffer at a continuous position, clamped to the border.
inline float sample(const float* in, int width, int height, float u, float v) {
  u = std::clamp(u, 0.0f, static_cast<float>(width - 1));
  v = std::clamp(v, 0.0f, static_cast<float>(height - 1));
  const int u0 = std::min(static_cast<int>(u), width - 2 < 0 ? 0 : width - 2);
  const int v0 = std::min(static_cast<int>(v), height - 2 < 0 ? 0 : height - 2);
  const int u1 = std::min(u0 + 1, width - 1), v1 = std::min(v0 + 1, height - 1);
  const float fu = u - static_cast<float>(u0), fv = v - static_cast<float>(v0);
  const float a = in[u0 + width * v0], b = in[u1 + width * v0];
  const float c = in[u0 + width * v1], d = in[u1 + width * v1];
  return (a + (b - a) * fu) * (1.0f - fv) + (c + (d - c) * fu) * fv;
}

// Squared Euclidean distance transform along one line (Felzenszwalb & Huttenlocher): f holds 0 at
// features and +inf elsewhere on entry, squared distances on exit.
void distanceTransform1D(std::vector<double>& f, int n, std::vector<double>& d, std::vector<int>& v,
                         std::vector<double>& z) {
  constexpr double inf = std::numeric_limits<double>::infinity();
  int k = 0;
  v[0] = 0;
  z[0] = -inf;
  z[1] = inf;
  for (int q = 1; q < n; ++q) {
    if (f[q] == inf) continue;
    if (f[v[0]] == inf) {  // first feature seen on this line
      v[0] = q;
      continue;
    }
    double s;
    while (true) {
      s = ((f[q] + q * static_cast<double>(q)) - (f[v[k]] + v[k] * static_cast<double>(v[k]))) / (2.0 * (q - v[k]));
      if (s <= z[k] && k > 0) {
        --k;
        continue;
      }
      break;
    }
    ++k;
    v[k] = q;
    z[k] = s;
    z[k + 1] = inf;
  }
  if (f[v[0]] == inf) {  // no feature at all
    for (int q = 0; q < n; ++q) d[q] = inf;
  } else {
    k = 0;
    for (int q = 0; q < n; ++q) {
      while (z[k + 1] < q) ++k;
      const double dq = q - v[k];
      d[q] = dq * dq + f[v[k]];
    }
  }
  for (int q = 0; q < n; ++q) f[q] = d[q];
}

// Squared distance from every pixel to the nearest pixel where `feature` is true.
std::vector<double> squaredDistanceTo(const uint8_t* mask, bool featureInside, int width, int height) {
  constexpr double inf = std::numeric_limits<double>::infinity();
  std::vector<double> grid(static_cast<size_t>(width) * height);
  for (size_t i = 0; i < grid.size(); ++i) grid[i] = ((mask[i] != 0) == featureInside) ? 0.0 : inf;
  const int n = std::max(width, height);
  std::vector<double> f(n), d(n), z(n + 1);
  std::vector<int> v(n);
  for (int u = 0; u < width; ++u) {
    for (int y = 0; y < height; ++y) f[y] = grid[u + static_cast<size_t>(width) * y];
    distanceTransform1D(f, height, d, v, z);
    for (int y = 0; y < height; ++y) grid[u + static_cast<size_t>(width) * y] = f[y];
  }
  for (int y = 0; y < height; ++y) {
    double* row = grid.data() + static_cast<size_t>(width) * y;
    std::copy(row, row + width, f.begin());
    distanceTransform1D(f, width, d, v, z);
    std::copy(f.begin(), f.begin() + width, row);
  }
  return grid;
}

}  // namespace

SliceField SliceField::identity(int width, int height) {
  SliceField f;
  f.width = width;
  f.height = height;
  f.dx.assign(static_cast<size_t>(width) * height, 0.0f);
  f.dy.assign(static_cast<size_t>(width) * height, 0.0f);
  return f;
}

SliceField invertField(const SliceField& field) {
  const int w = field.width, h = field.height;
  SliceField inv = SliceField::identity(w, h);
  for (size_t i = 0; i < inv.dx.size(); ++i) {
    inv.dx[i] = -field.dx[i];
    inv.dy[i] = -field.dy[i];
  }
  for (int round = 0; round < 5; ++round) {
    for (int y = 0; y < h; ++y)
      for (int u = 0; u < w; ++u) {
        const size_t i = u + static_cast<size_t>(w) * y;
        const float pu = static_cast<float>(u) + inv.dx[i], pv = static_cast<float>(y) + inv.dy[i];
        inv.dx[i] = -sample(field.dx.data(), w, h, pu, pv);
        inv.dy[i] = -sample(field.dy.data(), w, h, pu, pv);
      }
  }
  return inv;
}

void warpSlice(const float* in, const SliceField& field, float* out) {
  const int w = field.width, h = field.height;
  for (int y = 0; y < h; ++y)
    for (int u = 0; u < w; ++u) {
      const size_t i = u + static_cast<size_t>(w) * y;
      out[i] = sample(in, w, h, static_cast<float>(u) + field.dx[i], static_cast<float>(y) + field.dy[i]);
    }
}

void signedDistance(const uint8_t* mask, int width, int height, float* out) {
  const auto toInside = squaredDistanceTo(mask, true, width, height);
  const auto toOutside = squaredDistanceTo(mask, false, width, height);
  const float full = -static_cast<float>(width + height);
  for (size_t i = 0; i < toInside.size(); ++i) {
    if (mask[i] != 0)
      out[i] = std::isinf(toOutside[i]) ? full : -(static_cast<float>(std::sqrt(toOutside[i])) - 0.5f);
    else
      out[i] = static_cast<float>(std::sqrt(toInside[i])) - 0.5f;
  }
}

}  // namespace tessera::interactive::detail
