#pragma once
// The tensors of the U-Net a spec describes, by name and shape in state order (parameters in
// module registration order, then buffers), computed without building the network. nn's test
// checks it against the LibTorch module, tensor by tensor.

#include <cstdint>
#include <string>
#include <vector>

#include "tessera/model/NetworkSpec.h"

namespace tessera::model {

enum class TensorRole { ConvWeight, ConvBias, NormWeight, NormBias, RunningMean, RunningVar, BatchCount };

struct TensorSlot {
  std::string name;
  std::vector<int64_t> shape;
  TensorRole role;
  int64_t fanIn = 0;  // for convolution weights and biases: input channels × kernel taps
};

std::vector<TensorSlot> weightLayout(const NetworkSpec& spec);

}  // namespace tessera::model
