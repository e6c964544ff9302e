#include "tessera/nn/Inference.h"

#include "ModelTypes.h"

#include <algorithm>

#include "InferenceNetwork.h"
#include "VolumeTensors.h"
#include "tessera/image/Resample.h"
#include "tessera/common/Error.h"

namespace tessera::nn {

namespace {

using torch::indexing::Slice;

// Probabilities [C, Z, Y, X] for a preprocessed volume, slice by slice.
torch::Tensor probabilities2D(detail::InferenceNetwork& net, const torch::Tensor& zyx, const NetworkSpec& spec,
                              int batchSize) {
  auto slices = detail::slicesAcross(zyx, spec.axis);  // [S, A, B]
  const int64_t a = slices.size(1), b = slices.size(2);
  const double background = slices.min().item<double>();
  auto padded = detail::padToMultiple(slices, 2, spec.sizeMultiple(), {}, background).unsqueeze(1);
  std::vector<torch::Tensor> outputs;
  for (int64_t s = 0; s < padded.size(0); s += batchSize) {
    auto x = padded.slice(0, s, std::min<int64_t>(padded.size(0), s + batchSize));
    auto p = net.probabilities(x);
    outputs.push_back(p.index({Slice(), Slice(), Slice(0, a), Slice(0, b)}));
  }
  auto csab = torch::cat(outputs, 0).movedim(1, 0);  // [C, S, A, B]
  return detail::fromSlicesAcross(csab, spec.axis);
}

// Probabilities [C, Z, Y, X] by overlapping patches (half-patch stride), averaged.
torch::Tensor probabilities3D(detail::InferenceNetwork& net, const torch::Tensor& zyx, const NetworkSpec& spec,
                              int batchSize) {
  const std::vector<int64_t> patch{spec.patch[2], spec.patch[1], spec.patch[0]};
  const double background = zyx.min().item<double>();
  auto padded = detail::padToMultiple(zyx, 3, 1, patch, background);
  std::vector<std::vector<int64_t>> starts(3);
  for (int d = 0; d < 3; ++d) {
    const int64_t size = padded.size(d), p = patch[static_cast<size_t>(d)];
    for (int64_t s = 0;; s += std::max<int64_t>(1, p / 2)) {
      starts[d].push_back(std::min(s, size - p));
      if (s + p >= size) break;
    }
  }
  auto sum = torch::zeros({spec.classes, padded.size(0), padded.size(1), padded.size(2)});
  auto count = torch::zeros({1, padded.size(0), padded.size(1), padded.size(2)});
  std::vector<std::array<int64_t, 3>> windows;
  for (auto z : starts[0])
    for (auto y : starts[1])
      for (auto x : starts[2]) windows.push_back({z, y, x});
  for (size_t w = 0; w < windows.size(); w += static_cast<size_t>(batchSize)) {
    const size_t end = std::min(windows.size(), w + static_cast<size_t>(batchSize));
    std::vector<torch::Tensor> xs;
    auto region = [&](const std::array<int64_t, 3>& s) {
      return std::vector<torch::indexing::TensorIndex>{Slice(s[0], s[0] + patch[0]), Slice(s[1], s[1] + patch[1]),
                                                       Slice(s[2], s[2] + patch[2])};
    };
    for (size_t i = w; i < end; ++i) xs.push_back(padded.index(region(windows[i])).unsqueeze(0));
    auto p = net.probabilities(torch::stack(xs));
    for (size_t i = w; i < end; ++i) {
      auto r = region(windows[i]);
      r.insert(r.begin(), Slice());
      sum.index(r).add_(p[static_cast<int64_t>(i - w)]);
      count.index(r).add_(1.0);
    }
  }
  auto probs = sum / count;
  return probs.index({Slice(), Slice(0, zyx.size(0)), Slice(0, zyx.size(1)), Slice(0, zyx.size(2))});
}

}  // namespace

image::Volume segment(const Model& model, const image::Volume& input, const InferenceOptions& options) {
  if (input.voxels.empty()) throw Error(ErrorCode::BadModel, "segment: the image is empty");
  if (options.batchSize < 1) throw Error(ErrorCode::BadModel, "segment: batch size must be at least 1");
  detail::InferenceNetwork net(model.spec, model.weights, options.foldBatchNorm);
  c10::InferenceMode inference;

  const image::Volume pre = model::preprocessImage(input, model.preprocessing);
  const auto zyx = detail::toTensor(pre);
  const auto probs = model.spec.dims == 2 ? probabilities2D(net, zyx, model.spec, options.batchSize)
                                          : probabilities3D(net, zyx, model.spec, options.batchSize);

  image::Volume out(input.geometry, 0.0f);
  out.modality = input.modality;
  out.bodyPart = input.bodyPart;
  if (pre.geometry.sameGrid(input.geometry)) {
    auto labels = probs.argmax(0).to(torch::kFloat32).contiguous();
    std::copy(labels.data_ptr<float>(), labels.data_ptr<float>() + labels.numel(), out.voxels.begin());
    return out;
  }
  // Interpolating probabilities (not labels) keeps boundaries smooth at the input's resolution.
  std::vector<float> best(out.voxels.size(), -1.0f);
  for (int64_t c = 0; c < probs.size(0); ++c) {
    auto channel = probs[c].contiguous();
    image::Volume atModel(pre.geometry);
    std::copy(channel.data_ptr<float>(), channel.data_ptr<float>() + channel.numel(), atModel.voxels.begin());
    const image::Volume atInput = image::resample(atModel, input.geometry, image::Interpolation::Linear);
    for (size_t i = 0; i < best.size(); ++i) {
      if (atInput.voxels[i] > best[i]) {
        best[i] = atInput.voxels[i];
        out.voxels[i] = static_cast<float>(c);
      }
    }
  }
  return out;
}

double meanDice(const Model& model, const std::vector<TrainingCase>& cases) {
  if (cases.empty()) throw Error(ErrorCode::BadRequest, "meanDice: the validation set is empty");
  double total = 0;
  for (const auto& c : cases) total += model::foregroundDice(segment(model, c.image), c.labels, model.task);
  return total / static_cast<double>(cases.size());
}

}  // namespace tessera::nn
