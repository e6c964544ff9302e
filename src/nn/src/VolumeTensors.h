#pragma once
// Moving volumes in and out of tensors, and the padding every U-Net input needs.

#include <torch/torch.h>

#include "tessera/image/Volume.h"

namespace tessera::nn::detail {

// [Z, Y, X] float tensor sharing nothing with the volume.
torch::Tensor toTensor(const image::Volume& volume);

// For 2D networks: the volume's slices across index `axis` as [S, A, B].
torch::Tensor slicesAcross(const torch::Tensor& zyx, int axis);
// Inverse of slicesAcross for a tensor with a leading channel dimension: [C, S, A, B] → [C, Z, Y, X].
torch::Tensor fromSlicesAcross(const torch::Tensor& csab, int axis);

// Pads the trailing `spatialDims` dimensions at their end up to multiples of `multiple` (and at
// least `minimum`), with `value`.
torch::Tensor padToMultiple(const torch::Tensor& t, int spatialDims, int64_t multiple,
                            const std::vector<int64_t>& minimum, double value);

}  // namespace tessera::nn::detail
