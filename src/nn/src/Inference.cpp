#include "tessera/nn/Inference.h"

#include "ModelTypes.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "GuidanceMaps.h"
#include "InferenceNetwork.h"
#include "VolumeTensors.h"
#include "tessera/image/Resample.h"
#include "tessera/common/Error.h"

namespace tessera::nn {

namespace {

using torch::indexing::Slice;

// Probabilities [C, Z, Y, X] for a preprocessed volume (or slab of slices), slice by slice.
// `guidance`: undefined, or [2, Z, Y, X] click maps on the same grid. `background` pads the image.
torch::Tensor probabilities2D(detail::InferenceNetwork& net, const torch::Tensor& zyx, const torch::Tensor& guidance,
                              const NetworkSpec& spec, int batchSize, double background) {
  auto slices = detail::slicesAcross(zyx, spec.axis);  // [S, A, B]
  const int64_t a = slices.size(1), b = slices.size(2);
  auto padded = detail::padToMultiple(slices, 2, spec.sizeMultiple(), {}, background).unsqueeze(1);
  torch::Tensor guide;  // [S, 2, A', B'] like `padded`
  if (guidance.defined()) {
    guide = detail::padToMultiple(guidance.movedim(3 - spec.axis, 1).movedim(0, 1).contiguous(), 2,
                                  spec.sizeMultiple(), {}, 0.0);
  }
  std::vector<torch::Tensor> outputs;
  for (int64_t s = 0; s < padded.size(0); s += batchSize) {
    const int64_t end = std::min<int64_t>(padded.size(0), s + batchSize);
    auto x = padded.slice(0, s, end);
    if (guide.defined()) x = torch::cat({x, guide.slice(0, s, end)}, 1);
    auto p = net.probabilities(x);
    outputs.push_back(p.index({Slice(), Slice(), Slice(0, a), Slice(0, b)}));
  }
  auto csab = torch::cat(outputs, 0).movedim(1, 0);  // [C, S, A, B]
  return detail::fromSlicesAcross(csab, spec.axis);
}

// Probabilities [C, Z, Y, X] by overlapping patches (half-patch stride), averaged.
torch::Tensor probabilities3D(detail::InferenceNetwork& net, const torch::Tensor& zyx, const torch::Tensor& guidance,
                              const NetworkSpec& spec, int batchSize, double background) {
  const std::vector<int64_t> patch{spec.patch[2], spec.patch[1], spec.patch[0]};
  auto padded = detail::padToMultiple(zyx, 3, 1, patch, background);
  torch::Tensor guide;  // [2, Z', Y', X'] like `padded`
  if (guidance.defined()) guide = detail::padToMultiple(guidance, 3, 1, patch, 0.0);
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
    for (size_t i = w; i < end; ++i) {
      auto x = padded.index(region(windows[i])).unsqueeze(0);
      if (guide.defined()) {
        auto r = region(windows[i]);
        r.insert(r.begin(), Slice());
        x = torch::cat({x, guide.index(r)}, 0);
      }
      xs.push_back(x);
    }
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

// Input slices first..last (inclusive) along `axis`; `all` when no range was asked for.
struct SliceRange {
  bool all = true;
  int64_t first = 0;
  int64_t last = 0;
  int64_t count() const { return last - first + 1; }
};

SliceRange sliceRangeFor(const Model& model, const image::Geometry& input, const InferenceOptions& options) {
  SliceRange range;
  if (options.firstSlice == -1 && options.lastSlice == -1) return range;
  const auto& spec = model.spec;
  if (spec.dims != 2 || model.preprocessing.targetSpacing[spec.axis] != 0.0) {
    throw Error(ErrorCode::BadRequest,
                "slice range: model for task " + model.task.name +
                    " does not map input slices one to one to network slices (only 2D models whose preprocessing "
                    "keeps the slice axis do)");
  }
  const int64_t slices = input.size[spec.axis];
  range.all = false;
  range.first = options.firstSlice == -1 ? 0 : options.firstSlice;
  range.last = options.lastSlice == -1 ? slices - 1 : options.lastSlice;
  if (range.first < 0 || range.last >= slices || range.first > range.last) {
    throw Error(ErrorCode::BadRequest, "slice range " + std::to_string(options.firstSlice) + ".." +
                                           std::to_string(options.lastSlice) + " is not within 0.." +
                                           std::to_string(slices - 1) + " along axis " + std::to_string(spec.axis));
  }
  return range;
}

// The voxels lo..lo+size-1 of a grid, placed where they lie in it.
image::Geometry boxOf(const image::Geometry& g, const std::array<int64_t, 3>& lo, const std::array<int64_t, 3>& size) {
  image::Geometry box = g;
  box.origin = g.indexToPoint({static_cast<double>(lo[0]), static_cast<double>(lo[1]), static_cast<double>(lo[2])});
  box.size = size;
  return box;
}

void pasteBox(image::Volume& into, const image::Volume& box, const std::array<int64_t, 3>& offset) {
  const auto& s = box.geometry.size;
  for (int64_t z = 0; z < s[2]; ++z)
    for (int64_t y = 0; y < s[1]; ++y)
      for (int64_t x = 0; x < s[0]; ++x) into.at(x + offset[0], y + offset[1], z + offset[2]) = box.at(x, y, z);
}

// Along one in-plane axis of the network grid (n voxels): the crop computed around the focus
// (cropLo..cropHi-1) and the part of it kept (keepLo..keepHi, inclusive).
struct AxisWindow {
  int64_t cropLo = 0, cropHi = 0, keepLo = 0, keepHi = 0;
};

AxisWindow focusWindow(double centre, int64_t n, int64_t radius, int64_t margin, int64_t multiple) {
  const auto c = static_cast<int64_t>(std::llround(centre));
  AxisWindow w;
  // Crops start on the U-Net's pooling grid, so every pooled voxel inside the crop pools the same
  // inputs as in a whole-slice run; a crop that reaches the end is padded exactly as the whole slice.
  w.cropLo = std::max<int64_t>(0, c - radius - margin) / multiple * multiple;
  const int64_t wanted = c + radius + margin + 1 - w.cropLo;
  w.cropHi = std::min<int64_t>(n, w.cropLo + (wanted + multiple - 1) / multiple * multiple);
  // Where the crop meets the slice's own border, the whole-slice run has no more context either.
  w.keepLo = w.cropLo == 0 ? 0 : w.cropLo + margin;
  w.keepHi = w.cropHi == n ? n - 1 : w.cropHi - 1 - margin;
  return w;
}

// Whether options.focusVoxel crops the slices: only 2D networks whose normalisation does not
// depend on the slice's extent (instance norm would see other statistics in a crop).
bool focused(const NetworkSpec& spec, const InferenceOptions& options) {
  return options.focusVoxel != std::array<int64_t, 3>{-1, -1, -1} && spec.dims == 2 &&
         spec.norm != model::Normalization::Instance;
}

void checkFocus(const image::Geometry& input, const InferenceOptions& options) {
  const auto& f = options.focusVoxel;
  if (f == std::array<int64_t, 3>{-1, -1, -1}) return;
  for (int a = 0; a < 3; ++a) {
    if (f[a] < 0 || f[a] >= input.size[a]) {
      throw Error(ErrorCode::BadRequest, "focus voxel (" + std::to_string(f[0]) + "," + std::to_string(f[1]) + "," +
                                             std::to_string(f[2]) + ") lies outside the image " + input.describe());
    }
  }
  if (options.focusRadius < 1 || options.focusMargin < 0) {
    throw Error(ErrorCode::BadRequest, "focus radius " + std::to_string(options.focusRadius) + " / margin " +
                                           std::to_string(options.focusMargin) + ": need a radius >= 1 and a margin >= 0");
  }
}

// The input voxels along axis `a` whose network coordinate lies in the window's kept part
// (preprocessing keeps origin and direction, so the map is affine along each axis).
std::pair<int64_t, int64_t> inputSpan(const image::Geometry& input, const image::Geometry& network, int a,
                                      const AxisWindow& w, int64_t focus) {
  std::array<double, 3> i0{0.0, 0.0, 0.0}, i1{0.0, 0.0, 0.0};
  i1[a] = 1.0;
  const double u0 = network.pointToIndex(input.indexToPoint(i0))[a];
  const double du = network.pointToIndex(input.indexToPoint(i1))[a] - u0;
  const int64_t last = input.size[a] - 1;
  int64_t lo = 0, hi = last;
  if (w.keepLo > 0) lo = static_cast<int64_t>(std::ceil((static_cast<double>(w.keepLo) - u0) / du - 1e-9));
  if (w.keepHi < network.size[a] - 1) hi = static_cast<int64_t>(std::floor((static_cast<double>(w.keepHi) - u0) / du + 1e-9));
  lo = std::clamp<int64_t>(lo, 0, last);
  hi = std::clamp<int64_t>(hi, 0, last);
  if (lo > hi) lo = hi = focus;
  return {lo, hi};
}

void copyInto(const torch::Tensor& t, image::Volume& v) {
  auto c = t.to(torch::kFloat32).contiguous();
  std::copy(c.data_ptr<float>(), c.data_ptr<float>() + c.numel(), v.voxels.begin());
}

// Labels (and entropy when asked for) on `target` from probabilities [C, Z, Y, X] on `atModel`.
Segmentation reduce(const torch::Tensor& probs, const image::Geometry& atModel, const image::Geometry& target,
                    bool withEntropy) {
  Segmentation out{image::Volume(target, 0.0f), image::Volume()};
  if (withEntropy) out.entropy = image::Volume(target, 0.0f);
  const double maxEntropy = std::log(static_cast<double>(probs.size(0)));
  if (atModel.sameGrid(target)) {
    copyInto(probs.argmax(0), out.labels);
    if (withEntropy) {
      copyInto((-(probs * probs.clamp_min(1e-30f).log()).sum(0)).clamp(0.0, maxEntropy), out.entropy);
    }
    return out;
  }
  // Interpolating probabilities (not labels) keeps boundaries smooth at the input's resolution.
  std::vector<float> best(out.labels.voxels.size(), -1.0f);
  for (int64_t c = 0; c < probs.size(0); ++c) {
    image::Volume channel(atModel);
    copyInto(probs[c], channel);
    const image::Volume atInput = image::resample(channel, target, image::Interpolation::Linear);
    for (size_t i = 0; i < best.size(); ++i) {
      const float p = atInput.voxels[i];
      if (p > best[i]) {
        best[i] = p;
        out.labels.voxels[i] = static_cast<float>(c);
      }
      if (withEntropy && p > 0.0f) out.entropy.voxels[i] -= p * std::log(p);
    }
  }
  if (withEntropy) {
    for (float& h : out.entropy.voxels) h = std::clamp(h, 0.0f, static_cast<float>(maxEntropy));
  }
  return out;
}

Segmentation run(const Model& model, const image::Volume& input, const Guidance& guidance,
                 const InferenceOptions& options, bool withEntropy) {
  if (input.voxels.empty()) throw Error(ErrorCode::BadModel, "segment: the image is empty");
  if (options.batchSize < 1) throw Error(ErrorCode::BadModel, "segment: batch size must be at least 1");
  const auto& spec = model.spec;
  if (!guidance.empty() && spec.guidanceChannels == 0) {
    throw Error(ErrorCode::BadRequest, "model for task " + model.task.name +
                                           " has no guidance channels: train it with --guidance to use clicks");
  }
  detail::checkClicksInside(guidance, input.geometry);
  checkFocus(input.geometry, options);
  const SliceRange range = sliceRangeFor(model, input.geometry, options);

  detail::InferenceNetwork net(spec, model.weights, options.foldBatchNorm);
  c10::InferenceMode inference;

  // The whole image is preprocessed even for a slice range or focus: its intensity statistics
  // (and so every slice's normalised values) are those of the whole volume.
  const image::Volume pre = model::preprocessImage(input, model.preprocessing);
  auto zyx = detail::toTensor(pre);
  const double background = zyx.min().item<double>();
  const auto& netGrid = pre.geometry;
  const auto& inGrid = input.geometry;
  // The network-grid box computed (netLo, netSize) and the input-grid box kept (inLo..inHi).
  std::array<int64_t, 3> netLo{0, 0, 0}, netSize = netGrid.size, inLo{0, 0, 0};
  std::array<int64_t, 3> inHi{inGrid.size[0] - 1, inGrid.size[1] - 1, inGrid.size[2] - 1};
  if (!range.all) {
    netLo[spec.axis] = inLo[spec.axis] = range.first;
    netSize[spec.axis] = range.count();
    inHi[spec.axis] = range.last;
  }
  if (focused(spec, options)) {
    const auto& f = options.focusVoxel;
    const auto centre = netGrid.pointToIndex(
        inGrid.indexToPoint({static_cast<double>(f[0]), static_cast<double>(f[1]), static_cast<double>(f[2])}));
    for (int a = 0; a < 3; ++a) {
      if (a == spec.axis) continue;
      const auto w = focusWindow(centre[a], netGrid.size[a], options.focusRadius, options.focusMargin, spec.sizeMultiple());
      netLo[a] = w.cropLo;
      netSize[a] = w.cropHi - w.cropLo;
      const auto span = inputSpan(inGrid, netGrid, a, w, f[a]);
      inLo[a] = span.first;
      inHi[a] = span.second;
    }
  }
  for (int a = 0; a < 3; ++a) {
    if (netSize[a] != netGrid.size[a]) zyx = zyx.narrow(2 - a, netLo[a], netSize[a]);
  }
  const std::array<int64_t, 3> inSize{inHi[0] - inLo[0] + 1, inHi[1] - inLo[1] + 1, inHi[2] - inLo[2] + 1};
  image::Geometry atModel = boxOf(netGrid, netLo, netSize);
  const image::Geometry target = boxOf(inGrid, inLo, inSize);
  torch::Tensor guide;
  if (spec.guidanceChannels > 0) {
    guide = detail::guidanceMaps(guidance, inGrid, atModel, detail::clickSigmaVoxels(spec, netGrid));
  }
  auto probs = spec.dims == 2 ? probabilities2D(net, zyx, guide, spec, options.batchSize, background)
                              : probabilities3D(net, zyx, guide, spec, options.batchSize, background);
  if (netGrid.sameGrid(inGrid) && !atModel.sameGrid(target)) {
    // Same grids: the kept box is a sub-box of the computed one, no resampling needed.
    for (int a = 0; a < 3; ++a) probs = probs.narrow(3 - a, inLo[a] - netLo[a], inSize[a]);
    atModel = target;
  }

  Segmentation part = reduce(probs, atModel, target, withEntropy);
  Segmentation out;
  if (target.sameGrid(inGrid)) {
    out = std::move(part);
  } else {
    out.labels = image::Volume(inGrid, 0.0f);
    pasteBox(out.labels, part.labels, inLo);
    if (withEntropy) {
      out.entropy = image::Volume(inGrid, 0.0f);
      pasteBox(out.entropy, part.entropy, inLo);
    }
  }
  out.computed = {inLo[0], inLo[1], inLo[2], inHi[0], inHi[1], inHi[2]};
  for (auto* v : {&out.labels, &out.entropy}) {
    v->modality = input.modality;
    v->bodyPart = input.bodyPart;
  }
  return out;
}

}  // namespace

image::Volume segment(const Model& model, const image::Volume& input, const InferenceOptions& options) {
  return run(model, input, Guidance{}, options, /*withEntropy=*/false).labels;
}

Segmentation segmentDetailed(const Model& model, const image::Volume& input, const Guidance& guidance,
                             const InferenceOptions& options) {
  return run(model, input, guidance, options, /*withEntropy=*/true);
}

double meanDice(const Model& model, const std::vector<TrainingCase>& cases) {
  if (cases.empty()) throw Error(ErrorCode::BadRequest, "meanDice: the validation set is empty");
  double total = 0;
  for (const auto& c : cases) total += model::foregroundDice(segment(model, c.image), c.labels, model.task);
  return total / static_cast<double>(cases.size());
}

}  // namespace tessera::nn
