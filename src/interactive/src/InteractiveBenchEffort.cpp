// The bench's definitions of manual effort and of "every k-th slice", shared by the protocol and
// its tests.

#include <set>

#include "InteractiveBenchSlices.h"
#include "tessera/common/Error.h"
#include "tessera/interactive/InteractiveBench.h"

namespace tessera::interactive {

namespace detail {

std::vector<int64_t> voxelsPerSlice(const image::Volume& volume, int axis, const std::function<bool(int64_t)>& counts) {
  const auto& s = volume.geometry.size;
  std::vector<int64_t> perSlice(static_cast<size_t>(s[static_cast<size_t>(axis)]), 0);
  for (int64_t z = 0; z < s[2]; ++z) {
    for (int64_t y = 0; y < s[1]; ++y) {
      for (int64_t x = 0; x < s[0]; ++x) {
        const int64_t i = volume.index(x, y, z);
        if (counts(i)) ++perSlice[static_cast<size_t>(axis == 0 ? x : axis == 1 ? y : z)];
      }
    }
  }
  return perSlice;
}

std::vector<int64_t> structurePerSlice(const image::Volume& truth, int axis, int label) {
  const auto value = static_cast<float>(label);
  return voxelsPerSlice(truth, axis, [&](int64_t i) { return truth.voxels[static_cast<size_t>(i)] == value; });
}

}  // namespace detail

AnnotationEffort manualEffort(const image::Volume& truth, int axis, int label) {
  if (axis < 0 || axis > 2) throw Error(ErrorCode::BadRequest, "axis " + std::to_string(axis) + " is not 0, 1 or 2");
  AnnotationEffort effort;
  for (int64_t n : detail::structurePerSlice(truth, axis, label)) {
    effort.interactions += n > 0;
    effort.editedVoxels += n;
  }
  return effort;
}

std::vector<int64_t> everyNthStructureSlice(const image::Volume& truth, int axis, int label, int every) {
  if (axis < 0 || axis > 2) throw Error(ErrorCode::BadRequest, "axis " + std::to_string(axis) + " is not 0, 1 or 2");
  if (every < 1) throw Error(ErrorCode::BadRequest, "every " + std::to_string(every) + "th slice: must be at least 1");
  const auto perSlice = detail::structurePerSlice(truth, axis, label);
  int64_t first = -1, last = -1;
  for (size_t i = 0; i < perSlice.size(); ++i) {
    if (perSlice[i] == 0) continue;
    if (first < 0) first = static_cast<int64_t>(i);
    last = static_cast<int64_t>(i);
  }
  std::vector<int64_t> slices;
  if (first < 0) return slices;
  for (int64_t s = first; s <= last; s += every) slices.push_back(s);
  if (slices.back() != last) slices.push_back(last);
  return slices;
}

void checkBenchOptions(size_t caseCount, const InteractiveBenchOptions& options) {
  if (caseCount < 2) {
    throw Error(ErrorCode::BadRequest, "bench interactive: " + std::to_string(caseCount) +
                                           " case(s) given; at least 2 are needed (one learned from, one held out)");
  }
  const int learn = options.learnCases < 0 ? static_cast<int>(caseCount) - 1 : options.learnCases;
  if (options.learnCases < -1 || learn < 1 || learn >= static_cast<int>(caseCount)) {
    throw Error(ErrorCode::BadRequest, "--learn-cases " + std::to_string(options.learnCases) + ": must be 1.." +
                                           std::to_string(caseCount - 1) +
                                           " (the first N cases are learned from, at least one is held out)");
  }
  if (options.clicks.maxClicks < 1) {
    throw Error(ErrorCode::BadRequest, "--max-clicks " + std::to_string(options.clicks.maxClicks) + ": must be at least 1");
  }
  if (!(options.clicks.targetDice > 0.0 && options.clicks.targetDice <= 1.0)) {
    throw Error(ErrorCode::BadRequest, "--target " + std::to_string(options.clicks.targetDice) + ": must be in (0, 1]");
  }
  for (int every : options.proxyEvery) {
    if (every < 1) throw Error(ErrorCode::BadRequest, "--proxy-every " + std::to_string(every) + ": must be at least 1");
  }
}

void checkBenchInput(const std::vector<BenchCase>& cases, const InteractiveBenchOptions& options) {
  checkBenchOptions(cases.size(), options);
  if (options.workDir.empty()) throw Error(ErrorCode::BadRequest, "bench interactive: no work directory given");
  std::set<std::string> names;
  for (const auto& c : cases) {
    if (!names.insert(c.name).second) {
      throw Error(ErrorCode::BadRequest, "case " + c.name + ": given twice (case names come from the image file names)");
    }
    if (!c.image.geometry.sameGrid(c.truth.geometry)) {
      throw Error(ErrorCode::BadRequest, "case " + c.name + ": the image (" + c.image.geometry.describe() +
                                             ") and its labels (" + c.truth.geometry.describe() + ") are not on one grid");
    }
    if (manualEffort(c.truth, 2, options.clicks.label).editedVoxels == 0) {
      throw Error(ErrorCode::BadRequest, "case " + c.name + ": its labels hold no voxel of label " +
                                             std::to_string(options.clicks.label) + " (nothing to segment)");
    }
  }
}

}  // namespace tessera::interactive
