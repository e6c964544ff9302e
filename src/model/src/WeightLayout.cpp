#include "tessera/model/WeightLayout.h"

namespace tessera::model {

namespace {

struct LayoutBuilder {
  const NetworkSpec& spec;
  std::vector<TensorSlot> parameters;
  std::vector<TensorSlot> buffers;

  std::vector<int64_t> kernel(int64_t out, int64_t in, int64_t size) const {
    std::vector<int64_t> shape{out, in};
    for (int d = 0; d < spec.dims; ++d) shape.push_back(size);
    return shape;
  }
  int64_t taps(int64_t size) const {
    int64_t n = 1;
    for (int d = 0; d < spec.dims; ++d) n *= size;
    return n;
  }

  void conv(const std::string& prefix, int64_t in, int64_t out, int64_t size) {
    const int64_t fanIn = in * taps(size);
    parameters.push_back({prefix + ".weight", kernel(out, in, size), TensorRole::ConvWeight, fanIn});
    parameters.push_back({prefix + ".bias", {out}, TensorRole::ConvBias, fanIn});
  }

  // torch::nn::ConvBlock: "conv" then "norm"; batch norm also keeps running statistics.
  void block(const std::string& prefix, int64_t in, int64_t out) {
    conv(prefix + ".conv", in, out, 3);
    if (spec.norm == Normalization::None) return;
    parameters.push_back({prefix + ".norm.weight", {out}, TensorRole::NormWeight, 0});
    parameters.push_back({prefix + ".norm.bias", {out}, TensorRole::NormBias, 0});
    if (spec.norm == Normalization::Batch) {
      buffers.push_back({prefix + ".norm.running_mean", {out}, TensorRole::RunningMean, 0});
      buffers.push_back({prefix + ".norm.running_var", {out}, TensorRole::RunningVar, 0});
      buffers.push_back({prefix + ".norm.num_batches_tracked", {}, TensorRole::BatchCount, 0});
    }
  }

  void stage(const std::string& prefix, int64_t in, int64_t out) {
    block(prefix + ".0", in, out);
    block(prefix + ".1", out, out);
  }
};

}  // namespace

std::vector<TensorSlot> weightLayout(const NetworkSpec& spec) {
  spec.validate();
  LayoutBuilder b{spec, {}, {}};
  std::vector<int64_t> features;
  int64_t in = spec.inChannels + spec.guidanceChannels;
  for (int level = 0; level < spec.depth; ++level) {
    const int64_t f = int64_t{spec.baseFeatures} << level;
    features.push_back(f);
    b.stage("enc" + std::to_string(level), in, f);
    in = f;
  }
  for (int level = spec.depth - 2; level >= 0; --level) {
    const int64_t f = features[static_cast<size_t>(level)];
    // A transposed convolution's weight is [in, out, k…]; PyTorch takes its fan-in from dim 1.
    const std::string up = "up" + std::to_string(level);
    const int64_t fanIn = f * b.taps(2);
    b.parameters.push_back({up + ".weight", b.kernel(2 * f, f, 2), TensorRole::ConvWeight, fanIn});
    b.parameters.push_back({up + ".bias", {f}, TensorRole::ConvBias, fanIn});
    b.stage("dec" + std::to_string(level), 2 * f, f);
  }
  b.conv("head", features[0], spec.classes, 1);
  auto out = std::move(b.parameters);
  out.insert(out.end(), b.buffers.begin(), b.buffers.end());
  return out;
}

}  // namespace tessera::model
