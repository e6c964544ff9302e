#pragma once
// Per-slice voxel counts, private to the interactive bench.

#include <cstdint>
#include <functional>
#include <vector>

#include "tessera/image/Volume.h"

namespace tessera::interactive::detail {

// For each slice across `axis`: how many of its voxels (by linear index) `counts` accepts.
std::vector<int64_t> voxelsPerSlice(const image::Volume& volume, int axis, const std::function<bool(int64_t)>& counts);

// For each slice across `axis`: voxels with truth == label.
std::vector<int64_t> structurePerSlice(const image::Volume& truth, int axis, int label);

}  // namespace tessera::interactive::detail
