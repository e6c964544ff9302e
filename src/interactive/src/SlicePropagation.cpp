#include "tessera/interactive/SlicePropagation.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <exception>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "SliceFields.h"
#include "tessera/common/Error.h"

namespace tessera::interactive {

namespace {

using detail::SliceField;
using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// How 2D slices sit in the volume: pixel (u, v) of slice k is voxel u*strideU + v*strideV + k*strideK.
struct SliceLayout {
  int width = 0, height = 0;
  int64_t count = 0;
  int64_t strideU = 0, strideV = 0, strideK = 0;

  SliceLayout(const image::Geometry& g, int axis) {
    const std::array<int64_t, 3> stride{1, g.size[0], g.size[0] * g.size[1]};
    const int p = axis == 0 ? 1 : 0, q = axis == 2 ? 1 : 2;
    width = static_cast<int>(g.size[p]);
    height = static_cast<int>(g.size[q]);
    count = g.size[axis];
    strideU = stride[p];
    strideV = stride[q];
    strideK = stride[axis];
  }
  size_t pixels() const { return static_cast<size_t>(width) * height; }
  int64_t voxel(int64_t k, size_t pixel) const {
    const int64_t u = static_cast<int64_t>(pixel % width), v = static_cast<int64_t>(pixel / width);
    return u * strideU + v * strideV + k * strideK;
  }
};

// Runs job(i) for i in [0, count) on `threads` workers; the first exception is rethrown here.
// Plain threads rather than ITK's pool: the registrations inside submit their own (single) work
// units to that pool, and pool workers blocked on jobs queued behind them could deadlock.
template <typename Job>
void parallelFor(size_t count, int threads, Job job) {
  std::atomic<size_t> next{0};
  std::exception_ptr failure;
  std::mutex failureMutex;
  auto worker = [&] {
    for (size_t i = next++; i < count; i = next++) {
      try {
        job(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(failureMutex);
        if (!failure) failure = std::current_exception();
        next = count;
      }
    }
  };
  const int n = static_cast<int>(std::min<size_t>(count, static_cast<size_t>(std::max(1, threads))));
  std::vector<std::thread> pool;
  for (int t = 1; t < n; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
}

std::string axisName(int axis) { return std::to_string(axis); }

// The checks both entry points share; returns the drawn slices in ascending order.
std::vector<int64_t> checkedSlices(const image::Volume& annotated, int axis, const std::vector<int64_t>& slices) {
  if (axis < 0 || axis > 2)
    throw Error(ErrorCode::BadRequest, "axis " + std::to_string(axis) + " is not 0, 1 or 2");
  if (slices.empty()) throw Error(ErrorCode::BadRequest, "slices: at least one drawn slice is needed");
  const int64_t n = annotated.geometry.size[axis];
  std::vector<int64_t> sorted = slices;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t k : sorted) {
    if (k < 0 || k >= n)
      throw Error(ErrorCode::BadRequest, "slice " + std::to_string(k) + " is out of range 0.." + std::to_string(n - 1) +
                                             " along axis " + axisName(axis) + " (" + annotated.geometry.describe() + ")");
  }
  for (size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i] == sorted[i - 1])
      throw Error(ErrorCode::BadRequest, "slice " + std::to_string(sorted[i]) + " is listed twice");
  }
  const SliceLayout layout(annotated.geometry, axis);
  for (int64_t k : sorted) {
    for (size_t p = 0; p < layout.pixels(); ++p) {
      const float value = annotated.voxels[static_cast<size_t>(layout.voxel(k, p))];
      if (!std::isfinite(value) || value < 0.0f || value != std::floor(value) || value > 65535.0f) {
        const int64_t u = static_cast<int64_t>(p % layout.width), v = static_cast<int64_t>(p / layout.width);
        throw Error(ErrorCode::BadRequest, "annotated slice " + std::to_string(k) + " holds label value " +
                                               std::to_string(value) + " at pixel (" + std::to_string(u) + "," +
                                               std::to_string(v) + "); labels must be integers 0..65535");
      }
    }
  }
  return sorted;
}

// Intensities mapped to 0..255 by the 0.5th and 99.5th percentiles of the whole volume, so that
// demons' force and its thresholds see the same scale on every scan and bright outliers do not
// flatten the contrast.
struct IntensityScale {
  float low = 0.0f, scale = 1.0f;

  explicit IntensityScale(const image::Volume& image) {
    const size_t n = image.voxels.size();
    const size_t step = std::max<size_t>(1, n / 1'000'000);
    std::vector<float> sample;
    sample.reserve(n / step + 1);
    for (size_t i = 0; i < n; i += step) sample.push_back(image.voxels[i]);
    const auto at = [&](double q) {
      const size_t k = std::min(sample.size() - 1, static_cast<size_t>(q * static_cast<double>(sample.size() - 1)));
      std::nth_element(sample.begin(), sample.begin() + static_cast<std::ptrdiff_t>(k), sample.end());
      return sample[k];
    };
    low = at(0.005);
    const float high = at(0.995);
    scale = high > low ? 255.0f / (high - low) : 1.0f;
  }
  float operator()(float v) const { return std::clamp((v - low) * scale, 0.0f, 255.0f); }
};

class Propagator {
 public:
  Propagator(const image::Volume& image, const image::Volume& annotated, int axis, std::vector<int64_t> drawn,
             const PropagationOptions& options)
      : image_(image),
        annotated_(annotated),
        layout_(image.geometry, axis),
        drawn_(std::move(drawn)),
        options_(options),
        intensity_(image) {
    threads_ = options.threads > 0 ? options.threads : detail::defaultWorkerCount();
    maxDistance_ = options.maxDistance >= 0
                       ? options.maxDistance
                       : std::max<int64_t>(2, static_cast<int64_t>(std::lround(0.1 * static_cast<double>(layout_.count))));
    std::set<int> values{0};
    for (int64_t k : drawn_)
      for (size_t p = 0; p < layout_.pixels(); ++p) values.insert(static_cast<int>(drawnLabel(k, p)));
    labelValues_.assign(values.begin(), values.end());
  }

  ProxyMask run() {
    const auto start = Clock::now();
    ProxyMask result;
    result.labels = image::Volume(image_.geometry, 0.0f);
    result.weights = image::Volume(image_.geometry, 0.0f);

    const auto registrationStart = Clock::now();
    registerNeededPairs();
    result.registrationSeconds = secondsSince(registrationStart);

    // Jobs: every gap between neighbouring drawn slices, then the two one-sided ends. They write
    // disjoint slices, so they run side by side.
    struct Job {
      int64_t from, to;  // a gap (from < to), or an end: from = drawn slice, to = -1 / +1 direction
      bool end;
    };
    std::vector<Job> jobs;
    for (size_t i = 0; i + 1 < drawn_.size(); ++i)
      if (drawn_[i + 1] - drawn_[i] >= 2) jobs.push_back({drawn_[i], drawn_[i + 1], false});
    jobs.push_back({drawn_.front(), -1, true});
    jobs.push_back({drawn_.back(), +1, true});
    parallelFor(jobs.size(), threads_, [&](size_t j) {
      if (jobs[j].end)
        propagateEnd(jobs[j].from, static_cast<int>(jobs[j].to), result.labels);
      else
        propagateGap(jobs[j].from, jobs[j].to, result.labels);
    });

    for (int64_t k : drawn_)
      for (size_t p = 0; p < layout_.pixels(); ++p) {
        const auto v = static_cast<size_t>(layout_.voxel(k, p));
        result.labels.voxels[v] = annotated_.voxels[v];
      }
    const int64_t first = std::max<int64_t>(0, drawn_.front() - maxDistance_);
    const int64_t last = std::min<int64_t>(layout_.count - 1, drawn_.back() + maxDistance_);
    for (int64_t k = first; k <= last; ++k) {
      const float w = 1.0f / (1.0f + static_cast<float>(distanceToDrawn(k)));
      for (size_t p = 0; p < layout_.pixels(); ++p) result.weights.voxels[static_cast<size_t>(layout_.voxel(k, p))] = w;
    }
    result.propagatedSlices = last - first + 1 - static_cast<int64_t>(drawn_.size());
    result.totalSeconds = secondsSince(start);
    return result;
  }

 private:
  float drawnLabel(int64_t k, size_t p) const { return annotated_.voxels[static_cast<size_t>(layout_.voxel(k, p))]; }

  int64_t distanceToDrawn(int64_t k) const {
    const auto it = std::lower_bound(drawn_.begin(), drawn_.end(), k);
    int64_t d = std::numeric_limits<int64_t>::max();
    if (it != drawn_.end()) d = *it - k;
    if (it != drawn_.begin()) d = std::min(d, k - *(it - 1));
    return d;
  }

  std::vector<float> normalisedSlice(int64_t k) const {
    std::vector<float> s(layout_.pixels());
    for (size_t p = 0; p < s.size(); ++p) s[p] = intensity_(image_.voxels[static_cast<size_t>(layout_.voxel(k, p))]);
    return s;
  }

  // Pair k joins slices k and k+1. forward_[k] carries slice k onto k+1; backward_[k] k+1 onto k.
  // Each pair is registered once; the backward field is the forward one inverted.
  void registerNeededPairs() {
    const int64_t pairs = std::max<int64_t>(0, layout_.count - 1);
    forward_.assign(static_cast<size_t>(pairs), {});
    backward_.assign(static_cast<size_t>(pairs), {});
    std::vector<char> needForward(static_cast<size_t>(pairs), 0), needBackward(static_cast<size_t>(pairs), 0);
    for (size_t i = 0; i + 1 < drawn_.size(); ++i)
      if (drawn_[i + 1] - drawn_[i] >= 2)
        for (int64_t k = drawn_[i]; k < drawn_[i + 1]; ++k) {
          // The last pair of a gap is only walked backward, the first only forward.
          if (k + 1 < drawn_[i + 1]) needForward[static_cast<size_t>(k)] = 1;
          if (k > drawn_[i]) needBackward[static_cast<size_t>(k)] = 1;
        }
    for (int64_t k = std::max<int64_t>(0, drawn_.front() - maxDistance_); k < drawn_.front(); ++k)
      needBackward[static_cast<size_t>(k)] = 1;
    for (int64_t k = drawn_.back(); k < std::min<int64_t>(pairs, drawn_.back() + maxDistance_); ++k)
      needForward[static_cast<size_t>(k)] = 1;
    std::vector<int64_t> todo;
    for (int64_t k = 0; k < pairs; ++k)
      if (needForward[static_cast<size_t>(k)] || needBackward[static_cast<size_t>(k)]) todo.push_back(k);
    const detail::DemonsSettings settings{options_.iterations, options_.fieldSigma};
    parallelFor(todo.size(), threads_, [&](size_t i) {
      const int64_t k = todo[i];
      const auto lower = normalisedSlice(k), upper = normalisedSlice(k + 1);
      // Fixed = slice k+1: its pixels find their place in slice k, which is what carrying k's
      // contours onto k+1 needs.
      auto field = detail::registerSlicePair(upper.data(), lower.data(), layout_.width, layout_.height, settings);
      if (needBackward[static_cast<size_t>(k)]) backward_[static_cast<size_t>(k)] = detail::invertField(field);
      if (needForward[static_cast<size_t>(k)]) forward_[static_cast<size_t>(k)] = std::move(field);
    });
  }

  // The signed distance map of label value `labelValues_[c]` on drawn slice k; empty when absent.
  std::vector<float> drawnDistance(int64_t k, size_t c) const {
    std::vector<uint8_t> mask(layout_.pixels());
    bool any = false;
    for (size_t p = 0; p < mask.size(); ++p) {
      mask[p] = static_cast<int>(drawnLabel(k, p)) == labelValues_[c];
      any = any || mask[p];
    }
    if (!any) return {};
    std::vector<float> d(mask.size());
    detail::signedDistance(mask.data(), layout_.width, layout_.height, d.data());
    if (options_.distanceClamp > 0.0) {
      const auto limit = static_cast<float>(options_.distanceClamp);
      for (auto& v : d) v = std::clamp(v, -limit, limit);
    }
    return d;
  }

  static float depth(const std::vector<float>& distance) {
    return -*std::min_element(distance.begin(), distance.end());
  }

  // Between drawn slices a and b: each label's distance map is carried from a forward and from b
  // backward, fused by w = 1/(1 + distance to that side's slice), and each pixel takes the label
  // with the smallest fused distance. A label drawn on one side only is taken, on the other, as
  // lying that label's depth outside everywhere, so it shrinks away towards the side without it
  // (vanishing about halfway) instead of stopping abruptly.
  void propagateGap(int64_t a, int64_t b, image::Volume& labels) const {
    const size_t n = layout_.pixels();
    const int64_t inner = b - a - 1;
    std::vector<float> best(static_cast<size_t>(inner) * n, std::numeric_limits<float>::infinity());
    std::vector<int> bestLabel(best.size(), 0);
    std::vector<float> carried(static_cast<size_t>(inner) * n), cur, next(n);
    for (size_t c = 0; c < labelValues_.size(); ++c) {
      const auto fromA = drawnDistance(a, c), fromB = drawnDistance(b, c);
      if (fromA.empty() && fromB.empty()) continue;
      const float outsideA = fromA.empty() ? depth(fromB) : 0.0f, outsideB = fromB.empty() ? depth(fromA) : 0.0f;
      if (!fromA.empty()) {
        cur = fromA;
        for (int64_t k = a + 1; k < b; ++k) {
          detail::warpSlice(cur.data(), forward_[static_cast<size_t>(k - 1)], next.data());
          std::copy(next.begin(), next.end(), carried.begin() + static_cast<std::ptrdiff_t>((k - a - 1) * n));
          std::swap(cur, next);
        }
      }
      if (!fromB.empty()) cur = fromB;
      for (int64_t k = b - 1; k > a; --k) {
        const float* sideB = nullptr;
        if (!fromB.empty()) {
          detail::warpSlice(cur.data(), backward_[static_cast<size_t>(k)], next.data());
          std::swap(cur, next);
          sideB = cur.data();
        }
        const float wa = 1.0f / (1.0f + static_cast<float>(k - a)), wb = 1.0f / (1.0f + static_cast<float>(b - k));
        const size_t offset = static_cast<size_t>(k - a - 1) * n;
        for (size_t p = 0; p < n; ++p) {
          const float da = fromA.empty() ? outsideA : carried[offset + p];
          const float db = sideB ? sideB[p] : outsideB;
          const float fused = (wa * da + wb * db) / (wa + wb);
          if (fused < best[offset + p]) {
            best[offset + p] = fused;
            bestLabel[offset + p] = labelValues_[c];
          }
        }
      }
    }
    for (int64_t k = a + 1; k < b; ++k) {
      const size_t offset = static_cast<size_t>(k - a - 1) * n;
      for (size_t p = 0; p < n; ++p)
        labels.voxels[static_cast<size_t>(layout_.voxel(k, p))] = static_cast<float>(bestLabel[offset + p]);
    }
  }

  // Beyond the first (direction -1) or last (+1) drawn slice: one-sided, until every drawn
  // structure has vanished or maxDistance slices are done; what is left stays 0.
  void propagateEnd(int64_t from, int direction, image::Volume& labels) const {
    const size_t n = layout_.pixels();
    std::vector<std::vector<float>> distance;
    std::vector<int> value;
    for (size_t c = 0; c < labelValues_.size(); ++c) {
      auto d = drawnDistance(from, c);
      if (d.empty()) continue;
      distance.push_back(std::move(d));
      value.push_back(labelValues_[c]);
    }
    std::vector<float> next(n);
    for (int64_t step = 1; step <= maxDistance_; ++step) {
      const int64_t k = from + direction * step;
      if (k < 0 || k >= layout_.count) break;
      const SliceField& field = direction > 0 ? forward_[static_cast<size_t>(k - 1)] : backward_[static_cast<size_t>(k)];
      for (auto& d : distance) {
        detail::warpSlice(d.data(), field, next.data());
        std::swap(d, next);
      }
      bool anyForeground = false;
      for (size_t p = 0; p < n; ++p) {
        size_t bestC = 0;
        for (size_t c = 1; c < distance.size(); ++c)
          if (distance[c][p] < distance[bestC][p]) bestC = c;
        labels.voxels[static_cast<size_t>(layout_.voxel(k, p))] = static_cast<float>(value[bestC]);
        anyForeground = anyForeground || value[bestC] != 0;
      }
      if (!anyForeground) break;
    }
  }

  const image::Volume& image_;
  const image::Volume& annotated_;
  SliceLayout layout_;
  std::vector<int64_t> drawn_;
  PropagationOptions options_;
  IntensityScale intensity_;
  int threads_ = 1;
  int64_t maxDistance_ = 0;
  std::vector<int> labelValues_;  // label values present on the drawn slices, 0 always first
  std::vector<SliceField> forward_, backward_;
};

}  // namespace

ProxyMask propagateSlices(const image::Volume& image, const image::Volume& annotated, int axis,
                          const std::vector<int64_t>& slices, const PropagationOptions& options) {
  if (!image.geometry.sameGrid(annotated.geometry))
    throw Error(ErrorCode::BadRequest, "annotated mask grid " + annotated.geometry.describe() +
                                           " differs from the image's " + image.geometry.describe());
  auto drawn = checkedSlices(annotated, axis, slices);
  if (options.iterations.empty() || !(options.fieldSigma > 0.0) || !(options.distanceClamp >= 0.0))
    throw Error(ErrorCode::BadRequest,
                "propagation options: iterations must be given, the field sigma positive and the clamp not negative");
  return Propagator(image, annotated, axis, std::move(drawn), options).run();
}

image::Volume copyNearestSlice(const image::Volume& annotated, int axis, const std::vector<int64_t>& slices) {
  const auto drawn = checkedSlices(annotated, axis, slices);
  const SliceLayout layout(annotated.geometry, axis);
  image::Volume out(annotated.geometry, 0.0f);
  for (int64_t k = 0; k < layout.count; ++k) {
    auto it = std::lower_bound(drawn.begin(), drawn.end(), k);
    int64_t source;
    if (it == drawn.end())
      source = drawn.back();
    else if (it == drawn.begin())
      source = *it;
    else
      source = (k - *(it - 1) <= *it - k) ? *(it - 1) : *it;
    for (size_t p = 0; p < layout.pixels(); ++p)
      out.voxels[static_cast<size_t>(layout.voxel(k, p))] = annotated.voxels[static_cast<size_t>(layout.voxel(source, p))];
  }
  return out;
}

}  // namespace tessera::interactive
