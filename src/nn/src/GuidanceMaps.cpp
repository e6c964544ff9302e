#include "GuidanceMaps.h"

#include <cmath>

namespace tessera::nn::detail {

std::array<double, 3> clickSigmaVoxels(const NetworkSpec& spec, const image::Geometry& network) {
  std::array<double, 3> sigma{kClickSigmaVoxels, kClickSigmaVoxels, kClickSigmaVoxels};
  if (spec.dims != 2) return sigma;
  double inPlaneMm = 0.0;
  for (int a = 0; a < 3; ++a) {
    if (a != spec.axis) inPlaneMm += 0.5 * kClickSigmaVoxels * network.spacing[a];
  }
  sigma[spec.axis] = inPlaneMm / network.spacing[spec.axis];
  return sigma;
}

}  // namespace tessera::nn::detail

namespace tessera::nn {

double clickReachSlices(const model::Model& model, const image::Geometry& input) {
  const auto& spec = model.spec;
  const auto axis = static_cast<size_t>(spec.axis);
  if (spec.dims != 2 || model.preprocessing.targetSpacing[axis] != 0.0) {
    throw Error(ErrorCode::BadRequest, "click reach: model for task " + model.task.name +
                                           " does not keep the input's slices (only 2D models whose preprocessing keeps "
                                           "the slice axis do)");
  }
  image::Geometry network = input;
  for (size_t a = 0; a < 3; ++a) {
    if (model.preprocessing.targetSpacing[a] > 0.0) network.spacing[a] = model.preprocessing.targetSpacing[a];
  }
  return detail::kClickReachSigmas * detail::clickSigmaVoxels(spec, network)[axis];
}

}  // namespace tessera::nn

namespace tessera::nn::detail {

void checkClicksInside(const Guidance& guidance, const image::Geometry& input) {
  for (const auto& click : guidance.clicks) {
    for (int a = 0; a < 3; ++a) {
      if (click.voxel[a] < 0 || click.voxel[a] >= input.size[a]) {
        throw Error(ErrorCode::BadRequest, "click (" + std::to_string(click.voxel[0]) + "," +
                                               std::to_string(click.voxel[1]) + "," + std::to_string(click.voxel[2]) +
                                               ") lies outside the image " + input.describe());
      }
    }
  }
}

torch::Tensor guidanceMaps(const Guidance& guidance, const image::Geometry& input, const image::Geometry& target,
                           const std::array<double, 3>& sigmaVoxels) {
  const auto& size = target.size;
  auto maps = torch::zeros({2, size[2], size[1], size[0]}, torch::kFloat32);
  auto acc = maps.accessor<float, 4>();
  for (const auto& click : guidance.clicks) {
    const auto centre = target.pointToIndex(input.indexToPoint(
        {static_cast<double>(click.voxel[0]), static_cast<double>(click.voxel[1]), static_cast<double>(click.voxel[2])}));
    // Separable: one profile per axis over the window the Gaussian reaches.
    std::array<int64_t, 3> lo{}, hi{};
    std::array<std::vector<float>, 3> profile;
    bool reaches = true;
    for (int a = 0; a < 3; ++a) {
      const double reach = kClickReachSigmas * sigmaVoxels[a];
      lo[a] = std::max<int64_t>(0, static_cast<int64_t>(std::ceil(centre[a] - reach)));
      hi[a] = std::min<int64_t>(size[a] - 1, static_cast<int64_t>(std::floor(centre[a] + reach)));
      if (lo[a] > hi[a]) {
        reaches = false;
        break;
      }
      for (int64_t i = lo[a]; i <= hi[a]; ++i) {
        const double d = (static_cast<double>(i) - centre[a]) / sigmaVoxels[a];
        profile[a].push_back(static_cast<float>(std::exp(-0.5 * d * d)));
      }
    }
    if (!reaches) continue;
    auto channel = acc[click.positive ? 0 : 1];
    for (int64_t z = lo[2]; z <= hi[2]; ++z) {
      const float pz = profile[2][static_cast<size_t>(z - lo[2])];
      for (int64_t y = lo[1]; y <= hi[1]; ++y) {
        const float pyz = pz * profile[1][static_cast<size_t>(y - lo[1])];
        for (int64_t x = lo[0]; x <= hi[0]; ++x) channel[z][y][x] += pyz * profile[0][static_cast<size_t>(x - lo[0])];
      }
    }
  }
  return maps.clamp_max_(1.0f);
}

}  // namespace tessera::nn::detail
