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

#include "tessera/image/Volume.h"
#include "tessera/model/Model.h"

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

// How many input slices (of `input`, along the model's slice axis) a click's Gaussian reaches on
// each side, for a 2D model whose preprocessing keeps the slice axis: beyond it the click's map is
// exactly 0, so those slices cannot change. Throws Error(BadRequest) for other models.
double clickReachSlices(const model::Model& model, const image::Geometry& input);

}  // namespace tessera::nn
