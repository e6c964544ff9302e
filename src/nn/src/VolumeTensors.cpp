#include "VolumeTensors.h"

namespace tessera::nn::detail {

torch::Tensor toTensor(const image::Volume& volume) {
  const auto& s = volume.geometry.size;
  return torch::from_blob(const_cast<float*>(volume.voxels.data()), {s[2], s[1], s[0]}, torch::kFloat32).clone();
}

// In a [Z, Y, X] tensor, index axis a (0 = x) is dimension 2 - a.
torch::Tensor slicesAcross(const torch::Tensor& zyx, int axis) {
  return zyx.movedim(2 - axis, 0).contiguous();
}

torch::Tensor fromSlicesAcross(const torch::Tensor& csab, int axis) {
  return csab.movedim(1, 1 + (2 - axis)).contiguous();
}

torch::Tensor padToMultiple(const torch::Tensor& t, int spatialDims, int64_t multiple,
                            const std::vector<int64_t>& minimum, double value) {
  std::vector<int64_t> pad;  // torch::constant_pad_nd wants (last_begin, last_end, ...) pairs
  bool any = false;
  for (int i = 0; i < spatialDims; ++i) {
    const int64_t dim = t.dim() - 1 - i;
    const int64_t size = t.size(dim);
    int64_t target = std::max(size, minimum.empty() ? 0 : minimum[static_cast<size_t>(spatialDims - 1 - i)]);
    target = (target + multiple - 1) / multiple * multiple;
    pad.push_back(0);
    pad.push_back(target - size);
    any = any || target != size;
  }
  return any ? torch::constant_pad_nd(t, pad, value) : t;
}

}  // namespace tessera::nn::detail
