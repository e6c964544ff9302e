#pragma once
// The architecture of a U-Net as plain data: enough to rebuild the network from a model file.

#include <array>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace tessera::model {

enum class Normalization { Batch, Instance, None };

struct NetworkSpec {
  int dims = 2;  // 2: slice-wise network applied along `axis`; 3: patch-wise volumetric network
  int axis = 2;  // for dims == 2: the index axis the slices are taken across (0, 1 or 2)
  int inChannels = 1;
  // Interactive models take the person's clicks as extra input channels after the image
  // channels: 0 (automatic only) or 2 (positive clicks, negative clicks; see nn/Guidance.h).
  // The network's first convolution sees inChannels + guidanceChannels channels.
  int guidanceChannels = 0;
  int classes = 2;  // including background
  int baseFeatures = 16;
  int depth = 4;  // resolution levels, the deepest one being the bottleneck
  Normalization norm = Normalization::Batch;
  std::array<int, 3> patch{64, 64, 64};  // for dims == 3: training and inference patch (voxels)

  // Input sizes must be multiples of this along every convolved axis.
  int sizeMultiple() const { return 1 << (depth - 1); }
  // Throws Error naming the first field that is out of range.
  void validate() const;
};

nlohmann::json toJson(const NetworkSpec& spec);
// Throws Error naming the field that is missing or invalid.
NetworkSpec networkSpecFromJson(const nlohmann::json& json);

std::string toString(Normalization norm);

}  // namespace tessera::model
