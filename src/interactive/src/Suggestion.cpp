#include "tessera/interactive/Suggestion.h"

#include <algorithm>
#include <string>

#include "tessera/common/Error.h"

namespace tessera::interactive {

namespace {

int64_t sliceOf(int axis, int64_t x, int64_t y, int64_t z) { return axis == 0 ? x : axis == 1 ? y : z; }

}  // namespace

std::vector<SliceSuggestion> rankSlices(const image::Volume& previousMask, const image::Volume& currentMask,
                                        const image::Volume& entropy, const std::vector<DrawnSlice>& drawn,
                                        const SuggestionOptions& options) {
  const auto& g = currentMask.geometry;
  if (previousMask.geometry.size != g.size) {
    throw Error(ErrorCode::BadRequest, "suggest: previous mask " + previousMask.geometry.describe() +
                                           " and current mask " + g.describe() + " differ in size");
  }
  const bool haveEntropy = !entropy.voxels.empty();
  if (haveEntropy && entropy.geometry.size != g.size) {
    throw Error(ErrorCode::BadRequest,
                "suggest: entropy " + entropy.geometry.describe() + " and mask " + g.describe() + " differ in size");
  }
  std::vector<SliceSuggestion> all;
  for (int axis : options.axes) {
    if (axis < 0 || axis > 2) throw Error(ErrorCode::BadRequest, "suggest: axis " + std::to_string(axis) + " is not 0, 1 or 2");
    const int64_t n = g.size[static_cast<size_t>(axis)];
    std::vector<double> residual(static_cast<size_t>(n), 0.0), entropySum(static_cast<size_t>(n), 0.0);
    for (int64_t z = 0; z < g.size[2]; ++z) {
      for (int64_t y = 0; y < g.size[1]; ++y) {
        for (int64_t x = 0; x < g.size[0]; ++x) {
          const size_t s = static_cast<size_t>(sliceOf(axis, x, y, z));
          const int64_t i = currentMask.index(x, y, z);
          if (currentMask.voxels[static_cast<size_t>(i)] != previousMask.voxels[static_cast<size_t>(i)]) residual[s] += 1.0;
          if (haveEntropy) entropySum[s] += entropy.voxels[static_cast<size_t>(i)];
        }
      }
    }
    const double perSlice = static_cast<double>(g.voxelCount()) / static_cast<double>(std::max<int64_t>(n, 1));
    double maxResidual = 0.0, maxEntropy = 0.0;
    std::vector<SliceSuggestion> candidates;
    for (int64_t s = 0; s < n; ++s) {
      const bool isDrawn = std::find(drawn.begin(), drawn.end(), DrawnSlice{axis, s}) != drawn.end();
      if (isDrawn) continue;
      SliceSuggestion c;
      c.axis = axis;
      c.slice = s;
      c.residualVoxels = residual[static_cast<size_t>(s)];
      c.meanEntropy = entropySum[static_cast<size_t>(s)] / perSlice;
      maxResidual = std::max(maxResidual, c.residualVoxels);
      maxEntropy = std::max(maxEntropy, c.meanEntropy);
      candidates.push_back(c);
    }
    for (auto& c : candidates) {
      c.score = (maxResidual > 0 ? options.residualWeight * c.residualVoxels / maxResidual : 0.0) +
                (maxEntropy > 0 ? options.entropyWeight * c.meanEntropy / maxEntropy : 0.0);
      all.push_back(c);
    }
  }
  std::stable_sort(all.begin(), all.end(), [](const SliceSuggestion& a, const SliceSuggestion& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.axis != b.axis) return a.axis < b.axis;
    return a.slice < b.slice;
  });
  if (options.top >= 0 && all.size() > static_cast<size_t>(options.top)) all.resize(static_cast<size_t>(options.top));
  return all;
}

}  // namespace tessera::interactive
