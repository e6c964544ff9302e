#include "UNet.h"

#include "tessera/common/Error.h"

namespace tessera::nn::detail {

namespace {
std::shared_ptr<torch::nn::Module> makeConv(int dims, int64_t in, int64_t out, int64_t kernel,
                                            torch::nn::AnyModule& any) {
  if (dims == 2) {
    torch::nn::Conv2d c(torch::nn::Conv2dOptions(in, out, kernel).padding(kernel / 2));
    any = torch::nn::AnyModule(c);
    return c.ptr();
  }
  torch::nn::Conv3d c(torch::nn::Conv3dOptions(in, out, kernel).padding(kernel / 2));
  any = torch::nn::AnyModule(c);
  return c.ptr();
}

std::shared_ptr<torch::nn::Module> makeNorm(int dims, int64_t features, Normalization norm,
                                            torch::nn::AnyModule& any) {
  if (norm == Normalization::Batch) {
    if (dims == 2) {
      torch::nn::BatchNorm2d n(features);
      any = torch::nn::AnyModule(n);
      return n.ptr();
    }
    torch::nn::BatchNorm3d n(features);
    any = torch::nn::AnyModule(n);
    return n.ptr();
  }
  if (norm == Normalization::Instance) {
    if (dims == 2) {
      torch::nn::InstanceNorm2d n(torch::nn::InstanceNorm2dOptions(features).affine(true));
      any = torch::nn::AnyModule(n);
      return n.ptr();
    }
    torch::nn::InstanceNorm3d n(torch::nn::InstanceNorm3dOptions(features).affine(true));
    any = torch::nn::AnyModule(n);
    return n.ptr();
  }
  return nullptr;
}
}  // namespace

ConvBlockImpl::ConvBlockImpl(int dims, int64_t in, int64_t out, Normalization norm) : normKind_(norm) {
  convModule_ = register_module("conv", makeConv(dims, in, out, 3, conv_));
  if (auto n = makeNorm(dims, out, norm, norm_)) normModule_ = register_module("norm", n);
}

torch::Tensor ConvBlockImpl::forward(torch::Tensor x) {
  x = conv_.forward(x);
  if (normModule_ && !folded_) x = norm_.forward(x);
  return torch::relu_(x);
}

void ConvBlockImpl::foldNorm() {
  if (normKind_ != Normalization::Batch || folded_) return;
  torch::NoGradGuard noGrad;
  auto params = normModule_->named_parameters();
  auto buffers = normModule_->named_buffers();
  const auto& gamma = params["weight"];
  const auto& beta = params["bias"];
  const auto& mean = buffers["running_mean"];
  const auto& var = buffers["running_var"];
  const double eps = 1e-5;  // torch::nn::BatchNorm's default
  auto scale = gamma / torch::sqrt(var + eps);
  auto convParams = convModule_->named_parameters();
  auto& weight = convParams["weight"];
  auto& bias = convParams["bias"];
  std::vector<int64_t> shape(static_cast<size_t>(weight.dim()), 1);
  shape[0] = -1;
  weight.mul_(scale.reshape(shape));
  bias.copy_((bias - mean) * scale + beta);
  folded_ = true;
}

UNetImpl::UNetImpl(const NetworkSpec& spec) : spec_(spec) {
  spec.validate();
  const int d = spec.dims;
  int64_t in = spec.inChannels + spec.guidanceChannels;  // image channels, then click maps
  std::vector<int64_t> features;
  for (int level = 0; level < spec.depth; ++level) {
    const int64_t f = int64_t{spec.baseFeatures} << level;
    features.push_back(f);
    torch::nn::Sequential enc(ConvBlock(d, in, f, spec.norm), ConvBlock(d, f, f, spec.norm));
    encoders_.push_back(register_module("enc" + std::to_string(level), enc));
    in = f;
  }
  for (int level = spec.depth - 2; level >= 0; --level) {
    const int64_t f = features[static_cast<size_t>(level)];
    // The modules hold the parameters (and their standard initialisation); forward() uses
    // upsampleByMatmul on them.
    const std::string name = "up" + std::to_string(level);
    if (d == 2) {
      ups_.push_back(register_module(name, torch::nn::ConvTranspose2d(
                                               torch::nn::ConvTranspose2dOptions(2 * f, f, 2).stride(2))));
    } else {
      ups_.push_back(register_module(name, torch::nn::ConvTranspose3d(
                                               torch::nn::ConvTranspose3dOptions(2 * f, f, 2).stride(2))));
    }
    torch::nn::Sequential dec(ConvBlock(d, 2 * f, f, spec.norm), ConvBlock(d, f, f, spec.norm));
    decoders_.push_back(register_module("dec" + std::to_string(level), dec));
  }
  register_module("head", makeConv(d, features[0], spec.classes, 1, head_));
}

torch::Tensor UNetImpl::forward(torch::Tensor x) {
  std::vector<torch::Tensor> skips;
  for (size_t level = 0; level < encoders_.size(); ++level) {
    if (level > 0) {
      x = spec_.dims == 2 ? torch::max_pool2d(x, 2) : torch::max_pool3d(x, 2);
    }
    x = encoders_[level]->forward(x);
    skips.push_back(x);
  }
  for (size_t i = 0; i < ups_.size(); ++i) {
    const auto params = ups_[i]->named_parameters(/*recurse=*/false);
    x = upsampleByMatmul(x, params["weight"], params["bias"]);
    x = torch::cat({x, skips[skips.size() - 2 - i]}, 1);
    x = decoders_[i]->forward(x);
  }
  return head_.forward(x);
}

void UNetImpl::foldBatchNorm() {
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* block = dynamic_cast<ConvBlockImpl*>(m.get())) block->foldNorm();
  }
}

torch::Tensor upsampleByMatmul(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  const int64_t cin = weight.size(0), cout = weight.size(1);
  const int64_t spatial = x.dim() - 2;
  const int64_t taps = spatial == 2 ? 4 : 8;
  // The product runs as a 1x1 convolution: oneDNN's kernel, where a plain matmul would go to
  // Debian's reference BLAS. Output channel co * taps + tap holds that tap's value for co.
  std::vector<int64_t> kernelShape{cout * taps, cin, 1, 1};
  if (spatial == 3) kernelShape.push_back(1);
  std::vector<int64_t> order{1};
  for (int64_t d = 2; d < weight.dim(); ++d) order.push_back(d);
  order.push_back(0);
  const auto kernel = weight.permute(order).reshape(kernelShape);
  const auto taps_bias = bias.repeat_interleave(taps);
  if (spatial == 2) {
    return torch::pixel_shuffle(torch::conv2d(x, kernel, taps_bias), 2);
  }
  const int64_t n = x.size(0), d = x.size(2), h = x.size(3), w = x.size(4);
  auto y = torch::conv3d(x, kernel, taps_bias);  // [N, Co*8, D, H, W]
  return y.view({n, cout, 2, 2, 2, d, h, w}).permute({0, 1, 5, 2, 6, 3, 7, 4}).reshape({n, cout, 2 * d, 2 * h, 2 * w});
}

namespace {
// Parameters, then buffers: the order of tensors in a WeightSet and a .tsm file.
std::vector<std::pair<std::string, torch::Tensor>> namedState(UNet& net) {
  std::vector<std::pair<std::string, torch::Tensor>> state;
  for (const auto& p : net->named_parameters()) state.emplace_back(p.key(), p.value());
  for (const auto& b : net->named_buffers()) state.emplace_back(b.key(), b.value());
  return state;
}
}  // namespace

WeightSet extractWeights(UNet& net) {
  torch::NoGradGuard noGrad;
  WeightSet out;
  auto add = [&](const std::string& name, const torch::Tensor& t) {
    auto c = t.detach().to(torch::kFloat32).contiguous();
    WeightTensor w;
    w.name = name;
    w.shape.assign(c.sizes().begin(), c.sizes().end());
    w.values.assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
    out.push_back(std::move(w));
  };
  for (const auto& [name, tensor] : namedState(net)) add(name, tensor);
  return out;
}

void loadWeights(UNet& net, const WeightSet& weights) {
  torch::NoGradGuard noGrad;
  auto targets = namedState(net);
  if (targets.size() != weights.size()) {
    throw Error(ErrorCode::BadModel, "weights hold " + std::to_string(weights.size()) + " tensors, the network has " +
                     std::to_string(targets.size()));
  }
  for (size_t i = 0; i < targets.size(); ++i) {
    auto& [name, tensor] = targets[i];
    const auto& w = weights[i];
    if (w.name != name || std::vector<int64_t>(tensor.sizes().begin(), tensor.sizes().end()) != w.shape) {
      throw Error(ErrorCode::BadModel, "weight tensor '" + w.name + "' does not match network tensor '" + name + "'");
    }
    auto source = torch::from_blob(const_cast<float*>(w.values.data()), tensor.sizes(), torch::kFloat32);
    tensor.copy_(source.to(tensor.dtype()));
  }
}

void toChannelsLast(UNet& net) {
  torch::NoGradGuard noGrad;
  for (auto& p : net->parameters()) {
    if (p.dim() == 4) p.set_data(p.data().contiguous(torch::MemoryFormat::ChannelsLast));
  }
}

UNet buildNetwork(const NetworkSpec& spec, const WeightSet& weights) {
  UNet net(spec);
  loadWeights(net, weights);
  return net;
}

std::vector<std::pair<std::string, std::vector<int64_t>>> moduleLayout(const NetworkSpec& spec) {
  torch::NoGradGuard noGrad;
  UNet net(spec);
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  for (const auto& [name, tensor] : namedState(net)) out.emplace_back(name, std::vector<int64_t>(tensor.sizes().begin(), tensor.sizes().end()));
  return out;
}

}  // namespace tessera::nn::detail
