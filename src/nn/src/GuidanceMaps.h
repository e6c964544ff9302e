#pragma once
// Clicks (nn/Guidance.h) as the network's guidance channels: Gaussian maps at the network's grid.

#include <array>

#include <torch/torch.h>

#include "ModelTypes.h"
#include "tessera/image/Volume.h"
#include "tessera/nn/Guidance.h"

namespace tessera::nn::detail {

// Gaussian widths, in voxels of the network's grid `network`, along each index axis: three
// voxels in-plane. A 2D network sees each slice alone, so along its slice axis a click fades
// with the same width in mm as in-plane: it reaches the slices within about three of those
// widths and no further. 3D networks: three voxels along every axis.
std::array<double, 3> clickSigmaVoxels(const NetworkSpec& spec, const image::Geometry& network);

// Gaussians reach this many sigmas; beyond, a click's map is exactly 0.
inline constexpr double kClickReachSigmas = 3.0;

// Throws Error(BadRequest) when a click is not a voxel of `input`.
void checkClicksInside(const Guidance& guidance, const image::Geometry& input);

// [2, Z, Y, X] on `target` (the network's grid, or a slab of it): channel 0 sums the positive
// clicks' Gaussians, channel 1 the negative ones', each clamped to 1. Click voxels are indices of
// `input` and are placed through physical space, so any resampling in between is followed.
torch::Tensor guidanceMaps(const Guidance& guidance, const image::Geometry& input, const image::Geometry& target,
                           const std::array<double, 3>& sigmaVoxels);

}  // namespace tessera::nn::detail
