#include "tessera/nn/NormStatistics.h"

#include <algorithm>

#include "UNet.h"
#include "VolumeTensors.h"
#include "tessera/common/Error.h"

namespace tessera::nn {

namespace {

constexpr int64_t kSlicesPerPass = 16;

// Batch-norm layers switched to a cumulative average (momentum none) from zero: after the
// passes, running_mean/var are the mean of the per-pass statistics over the images.
int resetToCumulative(detail::UNet& net) {
  int layers = 0;
  for (const auto& m : net->modules(false)) {
    if (auto* bn = dynamic_cast<torch::nn::BatchNorm2dImpl*>(m.get())) {
      bn->options.momentum(c10::nullopt);
      bn->reset_running_stats();
      ++layers;
    } else if (auto* bn3 = dynamic_cast<torch::nn::BatchNorm3dImpl*>(m.get())) {
      bn3->options.momentum(c10::nullopt);
      bn3->reset_running_stats();
      ++layers;
    }
  }
  return layers;
}

// The network's input for `batch` images [N, 1, ...]: guidance channels (if any) carry no clicks.
torch::Tensor withGuidance(const torch::Tensor& batch, int64_t guidanceChannels) {
  if (guidanceChannels == 0) return batch;
  auto shape = batch.sizes().vec();
  shape[1] = guidanceChannels;
  return torch::cat({batch, torch::zeros(shape, batch.options())}, 1);
}

}  // namespace

int recomputeNormStatistics(model::Model& model, const std::vector<image::Volume>& images) {
  if (images.empty()) throw Error(ErrorCode::BadRequest, "norm statistics: no images to estimate them on");
  model.spec.validate();
  detail::UNet net = detail::buildNetwork(model.spec, model.weights);
  const int layers = resetToCumulative(net);
  if (layers == 0) return 0;
  net->train();  // batch norm updates its running statistics only in training mode
  torch::NoGradGuard noGrad;
  const int64_t multiple = model.spec.sizeMultiple();
  for (size_t i = 0; i < images.size(); ++i) {
    auto img = detail::toTensor(model::preprocessImage(images[i], model.preprocessing));
    const double background = img.min().item<double>();
    if (model.spec.dims == 2) {
      auto slices = detail::padToMultiple(detail::slicesAcross(img, model.spec.axis), 2, multiple, {}, background);
      for (int64_t s = 0; s < slices.size(0); s += kSlicesPerPass) {
        const auto batch = slices.slice(0, s, std::min(slices.size(0), s + kSlicesPerPass)).unsqueeze(1).contiguous();
        net->forward(withGuidance(batch, model.spec.guidanceChannels));
      }
    } else {
      const auto volume = detail::padToMultiple(img, 3, multiple, {}, background).unsqueeze(0).unsqueeze(0).contiguous();
      net->forward(withGuidance(volume, model.spec.guidanceChannels));
    }
  }
  model.weights = detail::extractWeights(net);
  return layers;
}

}  // namespace tessera::nn
