#pragma once
// A person's clicks as network input (Torch-free). A model whose spec has guidanceChannels == 2
// takes two extra input channels: positive clicks ("this is the structure") and negative clicks
// ("this is not"), each encoded as a sum of Gaussians clamped to 1, centred on the clicked voxels.
//
// Why Gaussians of sigma 3 voxels (at the network's resolution): DeepEdit/DeepGrow use sigma 2-3;
// a disc that small keeps a click local (the correction does not leak into neighbouring
// structures), yet wide enough that the first convolutions see it at every depth of a 4-level
// U-Net. Geodesic maps would follow edges better but cost a distance transform per click, which
// breaks the 0.5 s click budget on two cores.

#include <array>
#include <cstdint>
#include <vector>

namespace tessera::nn {

struct Click {
  std::array<int64_t, 3> voxel{0, 0, 0};  // voxel index (i, j, k) in the input image's grid
  bool positive = true;                   // true: part of the structure (a miss); false: not (a false positive)
};

struct Guidance {
  std::vector<Click> clicks;
  bool empty() const { return clicks.empty(); }
};

inline constexpr double kClickSigmaVoxels = 3.0;

}  // namespace tessera::nn
