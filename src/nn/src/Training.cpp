#include "tessera/nn/Training.h"

#include "ModelTypes.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>

#include "ClickSimulation.h"
#include "PartialLabelLoss.h"
#include "ProximalTerm.h"
#include "TrainingExtension.h"
#include "UNet.h"
#include "VolumeTensors.h"
#include "tessera/common/Error.h"
#include "tessera/image/Resample.h"

namespace tessera::nn {

using detail::UNet;

namespace {

// A 2D U-Net of depth d halves each slice d-1 times and normalises what is left; batch and
// instance norm need more than one value per channel there, so every in-plane axis needs at
// least 2^d voxels at the network's spacing (a 1x1x1 image otherwise ends in a LibTorch trace).
// 3D networks train on patches padded to the patch size, whatever the image size.
void checkLargeEnough(const std::string& which, const image::Geometry& grid, const NetworkSpec& spec,
                      const Preprocessing& preprocessing) {
  if (spec.dims != 2) return;
  const image::Geometry atNetwork = image::withSpacing(grid, preprocessing.targetSpacing);
  const int64_t minimum = int64_t{1} << spec.depth;
  const char* const names[] = {"x", "y", "z"};
  for (int a = 0; a < 3; ++a) {
    if (a == spec.axis || atNetwork.size[a] >= minimum) continue;
    const bool resampled = atNetwork.size != grid.size;
    throw Error(ErrorCode::BadImage,
                which + ": image " + grid.describe() + " is too small for the network: a 2D U-Net of depth " +
                    std::to_string(spec.depth) + " needs at least " + std::to_string(minimum) +
                    " voxels along each in-plane axis, this image has " + std::to_string(atNetwork.size[a]) +
                    " along " + names[a] + (resampled ? " at the network's spacing" : ""));
  }
}

}  // namespace

void validateTrainingCases(const std::vector<TrainingCase>& cases, const NetworkSpec& spec,
                           const Preprocessing& preprocessing) {
  if (cases.empty()) throw Error(ErrorCode::BadModel, "training: no image/label pairs given");
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    const std::string which = "training case " + std::to_string(i + 1);
    if (c.image.voxels.empty()) throw Error(ErrorCode::BadModel, which + ": the image is empty");
    if (!c.image.geometry.sameGrid(c.labels.geometry)) {
      throw Error(ErrorCode::BadModel, which + ": label map grid " + c.labels.geometry.describe() +
                       " differs from image grid " + c.image.geometry.describe());
    }
    checkLargeEnough(which, c.image.geometry, spec, preprocessing);
    if (!c.weights.voxels.empty()) {
      if (!c.weights.geometry.sameGrid(c.image.geometry)) {
        throw Error(ErrorCode::BadModel, which + ": weight map grid " + c.weights.geometry.describe() +
                                             " differs from image grid " + c.image.geometry.describe());
      }
      for (float w : c.weights.voxels) {
        if (!(w >= 0.0f && std::isfinite(w))) {
          throw Error(ErrorCode::BadModel, which + ": loss weight " + std::to_string(w) +
                                               " is not a finite number >= 0");
        }
      }
    }
    for (int l : c.annotatedLabels) {
      if (l < 1 || l >= spec.classes) {
        throw Error(ErrorCode::BadModel, which + ": annotated label " + std::to_string(l) + " is not in 1.." +
                                             std::to_string(spec.classes - 1));
      }
    }
    for (float v : c.labels.voxels) {
      if (v < 0 || v >= static_cast<float>(spec.classes) || v != std::round(v)) {
        throw Error(ErrorCode::BadModel, which + ": label value " + std::to_string(v) + " is not an integer in 0.." +
                         std::to_string(spec.classes - 1));
      }
    }
  }
}

namespace {

// Training examples at the network's resolution, padded to a common shape.
struct PreparedData {
  std::vector<torch::Tensor> images;  // [1, ...spatial] per case (3D) or per slice stack (2D)
  std::vector<torch::Tensor> labels;  // [...spatial] int64
  std::vector<torch::Tensor> weights;  // [...spatial] float, only when some case has weights
  std::vector<torch::Tensor> annotated;  // [C] float per case, only when some case is partially annotated
};

PreparedData prepare(const Model& model, const std::vector<TrainingCase>& cases) {
  PreparedData data;
  const auto& spec = model.spec;
  const bool weighted =
      std::any_of(cases.begin(), cases.end(), [](const TrainingCase& c) { return !c.weights.voxels.empty(); });
  const bool partial =
      std::any_of(cases.begin(), cases.end(), [](const TrainingCase& c) { return !c.annotatedLabels.empty(); });
  for (const auto& c : cases) {
    auto img = detail::toTensor(model::preprocessImage(c.image, model.preprocessing));
    const image::Volume labels = model::preprocessLabels(c.labels, model.preprocessing);
    auto lab = detail::toTensor(labels).round().to(torch::kInt64);
    torch::Tensor weights;
    if (weighted) {
      if (c.weights.voxels.empty()) {
        weights = torch::ones(lab.sizes(), torch::kFloat32);
      } else {
        // Linear, unlike labels: a weight is a degree of trust, not a class.
        weights = detail::toTensor(labels.geometry.sameGrid(c.weights.geometry)
                                       ? c.weights
                                       : image::resample(c.weights, labels.geometry, image::Interpolation::Linear));
      }
    }
    if (spec.dims == 2) {
      img = detail::slicesAcross(img, spec.axis);
      lab = detail::slicesAcross(lab, spec.axis);
      if (weighted) weights = detail::slicesAcross(weights, spec.axis);
    }
    if (partial) data.annotated.push_back(detail::annotatedMask(c.annotatedLabels, spec.classes));
    data.images.push_back(img);
    data.labels.push_back(lab);
    if (weighted) data.weights.push_back(weights);
  }
  return data;
}

// One training batch: images [N, 1, ...], labels [N, ...], loss weights like labels (undefined:
// weight 1 everywhere), annotated classes [N, C] (undefined: every class).
struct Batch {
  torch::Tensor images, labels, weights, annotated;
};

torch::Tensor softDiceLoss(const torch::Tensor& logits, const torch::Tensor& target, const torch::Tensor& weights) {
  const auto classes = logits.size(1);
  auto probs = torch::softmax(logits, 1);
  auto onehot = torch::one_hot(target, classes).movedim(-1, 1).to(probs.dtype());
  std::vector<int64_t> reduce{0};
  for (int64_t d = 2; d < logits.dim(); ++d) reduce.push_back(d);
  torch::Tensor intersection, denominator;
  if (weights.defined()) {
    // Weighted sums: a voxel of weight 0 takes no part in the overlap at all.
    const auto w = weights.unsqueeze(1);
    const auto weightedProbs = probs * w;
    intersection = (weightedProbs * onehot).sum(reduce);
    denominator = weightedProbs.sum(reduce) + (onehot * w).sum(reduce);
  } else {
    intersection = (probs * onehot).sum(reduce);
    denominator = probs.sum(reduce) + onehot.sum(reduce);
  }
  auto dice = (2 * intersection + 1.0) / (denominator + 1.0);
  return 1.0 - dice.slice(0, 1).mean();  // foreground classes only
}

// Cross-entropy (with smoothed targets when asked for) plus soft Dice, both scaled per voxel by
// `weights` when defined.
torch::Tensor segmentationLoss(const torch::Tensor& logits, const torch::Tensor& target, const torch::Tensor& weights,
                               double labelSmoothing) {
  namespace F = torch::nn::functional;
  auto options = F::CrossEntropyFuncOptions().label_smoothing(labelSmoothing);
  torch::Tensor crossEntropy;
  if (weights.defined()) {
    crossEntropy = (F::cross_entropy(logits, target, options.reduction(torch::kNone)) * weights).mean();
  } else {
    crossEntropy = F::cross_entropy(logits, target, options);
  }
  return crossEntropy + softDiceLoss(logits, target, weights);
}

// Random contrast, brightness and noise per sample: sites' scanners differ in exactly these.
torch::Tensor augmentIntensity(torch::Tensor x) {
  const auto n = x.size(0);
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[0] = n;
  auto scale = 1.0 + (torch::rand(shape) - 0.5) * 0.3;
  auto shift = (torch::rand(shape) - 0.5) * 0.3;
  auto noise = torch::randn_like(x) * (torch::rand(shape) * 0.05);
  return x * scale + shift + noise;
}

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual int64_t batchesPerEpoch() const = 0;
  virtual void startEpoch(std::mt19937_64& rng) = 0;
  virtual Batch batch(int64_t b, std::mt19937_64& rng) = 0;
};

// 2D: every slice of every case once per epoch, shuffled.
class SliceBatches : public BatchSource {
 public:
  SliceBatches(const PreparedData& data, const NetworkSpec& spec, int batchSize) : batchSize_(batchSize) {
    int64_t a = 0, b = 0;
    for (const auto& img : data.images) {
      a = std::max(a, img.size(1));
      b = std::max(b, img.size(2));
    }
    std::vector<torch::Tensor> imgs, labs, weights, annotated;
    for (size_t i = 0; i < data.images.size(); ++i) {
      if (!data.annotated.empty()) annotated.push_back(data.annotated[i].unsqueeze(0).expand({data.images[i].size(0), -1}));
      const double background = data.images[i].min().item<double>();
      imgs.push_back(detail::padToMultiple(data.images[i], 2, spec.sizeMultiple(), {a, b}, background));
      labs.push_back(detail::padToMultiple(data.labels[i], 2, spec.sizeMultiple(), {a, b}, 0));
      // Padding is not data: no loss there once weights are in play.
      if (!data.weights.empty()) weights.push_back(detail::padToMultiple(data.weights[i], 2, spec.sizeMultiple(), {a, b}, 0));
    }
    images_ = torch::cat(imgs, 0).unsqueeze(1).contiguous();
    labels_ = torch::cat(labs, 0).contiguous();
    if (!weights.empty()) weights_ = torch::cat(weights, 0).contiguous();
    if (!annotated.empty()) annotated_ = torch::cat(annotated, 0).contiguous();
    order_.resize(static_cast<size_t>(images_.size(0)));
  }
  int64_t batchesPerEpoch() const override {
    return (images_.size(0) + batchSize_ - 1) / batchSize_;
  }
  void startEpoch(std::mt19937_64& rng) override {
    std::iota(order_.begin(), order_.end(), 0);
    std::shuffle(order_.begin(), order_.end(), rng);
  }
  Batch batch(int64_t b, std::mt19937_64&) override {
    const auto begin = static_cast<size_t>(b * batchSize_);
    const auto end = std::min(order_.size(), begin + static_cast<size_t>(batchSize_));
    auto idx = torch::tensor(std::vector<int64_t>(order_.begin() + static_cast<std::ptrdiff_t>(begin),
                                                  order_.begin() + static_cast<std::ptrdiff_t>(end)));
    Batch out{images_.index_select(0, idx), labels_.index_select(0, idx), {}, {}};
    if (weights_.defined()) out.weights = weights_.index_select(0, idx);
    if (annotated_.defined()) out.annotated = annotated_.index_select(0, idx);
    return out;
  }

 private:
  int batchSize_;
  torch::Tensor images_, labels_, weights_, annotated_;
  std::vector<int64_t> order_;
};

// 3D: random patches, a third of them centred on foreground so small structures are seen.
class PatchBatches : public BatchSource {
 public:
  PatchBatches(const PreparedData& data, const NetworkSpec& spec, int batchSize)
      : batchSize_(batchSize), patch_{spec.patch[2], spec.patch[1], spec.patch[0]} {
    int64_t voxels = 0;
    for (size_t i = 0; i < data.images.size(); ++i) {
      const double background = data.images[i].min().item<double>();
      auto img = detail::padToMultiple(data.images[i], 3, 1, patch_, background);
      auto lab = detail::padToMultiple(data.labels[i], 3, 1, patch_, 0);
      images_.push_back(img.unsqueeze(0).contiguous());
      labels_.push_back(lab.contiguous());
      if (!data.weights.empty()) weights_.push_back(detail::padToMultiple(data.weights[i], 3, 1, patch_, 0).contiguous());
      foreground_.push_back(torch::nonzero(lab > 0));
      if (!data.annotated.empty()) annotated_.push_back(data.annotated[i]);
      voxels += img.numel();
    }
    const int64_t patchVoxels = patch_[0] * patch_[1] * patch_[2];
    batches_ = std::max<int64_t>(1, (voxels + patchVoxels * batchSize - 1) / (patchVoxels * batchSize));
  }
  int64_t batchesPerEpoch() const override { return batches_; }
  void startEpoch(std::mt19937_64&) override {}
  Batch batch(int64_t, std::mt19937_64& rng) override {
    std::vector<torch::Tensor> xs, ys, ws, as;
    for (int i = 0; i < batchSize_; ++i) {
      const size_t c = std::uniform_int_distribution<size_t>(0, images_.size() - 1)(rng);
      const auto& lab = labels_[c];
      std::array<int64_t, 3> start{};
      const bool centreOnForeground = foreground_[c].size(0) > 0 && rng() % 3 == 0;
      int64_t pick = 0;
      if (centreOnForeground) pick = std::uniform_int_distribution<int64_t>(0, foreground_[c].size(0) - 1)(rng);
      for (int d = 0; d < 3; ++d) {
        const int64_t maxStart = lab.size(d) - patch_[static_cast<size_t>(d)];
        if (centreOnForeground) {
          const int64_t centre = foreground_[c][pick][d].item<int64_t>();
          start[d] = std::clamp<int64_t>(centre - patch_[static_cast<size_t>(d)] / 2, 0, maxStart);
        } else {
          start[d] = std::uniform_int_distribution<int64_t>(0, maxStart)(rng);
        }
      }
      using torch::indexing::Slice;
      auto sl = [&](int d) { return Slice(start[d], start[d] + patch_[static_cast<size_t>(d)]); };
      xs.push_back(images_[c].index({Slice(), sl(0), sl(1), sl(2)}));
      ys.push_back(lab.index({sl(0), sl(1), sl(2)}));
      if (!weights_.empty()) ws.push_back(weights_[c].index({sl(0), sl(1), sl(2)}));
      if (!annotated_.empty()) as.push_back(annotated_[c]);
    }
    return {torch::stack(xs), torch::stack(ys), ws.empty() ? torch::Tensor() : torch::stack(ws),
            as.empty() ? torch::Tensor() : torch::stack(as)};
  }

 private:
  int batchSize_;
  std::vector<int64_t> patch_;
  std::vector<torch::Tensor> images_, labels_, weights_, foreground_, annotated_;
  int64_t batches_ = 1;
};

}  // namespace

void trainModel(Model& model, const std::vector<TrainingCase>& cases, const TrainOptions& options) {
  detail::trainModel(model, cases, options, nullptr);
}

void detail::trainModel(Model& model, const std::vector<TrainingCase>& cases, const TrainOptions& options,
                        TrainingExtension* extension) {
  model.spec.validate();
  if (!extension || !cases.empty()) validateTrainingCases(cases, model.spec, model.preprocessing);
  if (options.epochs < 1) throw Error(ErrorCode::BadModel, "training: epochs must be at least 1");
  if (options.batchSize < 1) throw Error(ErrorCode::BadModel, "training: batch size must be at least 1");
  if (!(options.proximalMu >= 0.0 && std::isfinite(options.proximalMu))) {
    throw Error(ErrorCode::BadModel, "training: proximal mu must be a finite number >= 0, got " + std::to_string(options.proximalMu));
  }
  if (!(options.labelSmoothing >= 0.0 && options.labelSmoothing < 1.0)) {
    throw Error(ErrorCode::BadModel, "training: label smoothing must be in [0, 1), got " +
                                         std::to_string(options.labelSmoothing));
  }
  const bool guided = model.spec.guidanceChannels > 0;
  if (guided) {
    const auto& c = options.clicks;
    if (!(c.noClickProbability >= 0.0 && c.noClickProbability <= 1.0) || c.clickIterations < 1 ||
        c.maxClicksPerIteration < 1) {
      throw Error(ErrorCode::BadModel,
                  "training: click simulation needs a no-click probability in [0, 1] and at least 1 iteration and "
                  "1 click per iteration");
    }
  }

  torch::manual_seed(options.seed);
  std::mt19937_64 rng(options.seed);
  UNet net = detail::buildNetwork(model.spec, model.weights);
  net->train();
  const bool channelsLast = model.spec.dims == 2;
  if (channelsLast) detail::toChannelsLast(net);
  const detail::ProximalTerm proximal(net->parameters(), options.proximalMu);

  const PreparedData data = prepare(model, cases);
  std::unique_ptr<BatchSource> source;
  if (cases.empty()) {
    // Only an extension's terms (semi-supervised training on unlabelled images alone).
  } else if (model.spec.dims == 2) {
    source = std::make_unique<SliceBatches>(data, model.spec, options.batchSize);
  } else {
    source = std::make_unique<PatchBatches>(data, model.spec, std::min(options.batchSize, 2));
  }

  torch::optim::Adam optimizer(net->parameters(), torch::optim::AdamOptions(options.learningRate));
  const auto started = std::chrono::steady_clock::now();
  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    // nnU-Net's polynomial decay: large steps first, fine convergence at the end.
    const double lr = options.learningRate * std::pow(1.0 - static_cast<double>(epoch) / options.epochs, 0.9);
    for (auto& group : optimizer.param_groups()) {
      static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
    }
    const int64_t labelledBatches = source ? source->batchesPerEpoch() : 0;
    if (source) source->startEpoch(rng);
    if (extension) extension->startEpoch(epoch, options.epochs, rng);
    double lossSum = 0.0;
    const int64_t batches = std::max(labelledBatches, extension ? extension->stepsPerEpoch() : 0);
    for (int64_t b = 0; b < batches; ++b) {
      optimizer.zero_grad();
      torch::Tensor loss;
      if (source) {
        auto [x, y, w, annotated] = source->batch(b % labelledBatches, rng);
        if (options.augment) x = augmentIntensity(x);
        if (guided) x = torch::cat({x, detail::simulateClicks(net, x, y, options.clicks, channelsLast, rng)}, 1);
        if (channelsLast) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
        auto logits = net->forward(x);
        // Partially annotated cases: the marginal loss (no label smoothing, which would put target
        // mass on classes the site never drew).
        loss = annotated.defined() ? detail::partialLabelLoss(logits, y, w, annotated)
                                   : segmentationLoss(logits, y, w, options.labelSmoothing);
      }
      if (extension) {
        auto extra = extension->loss(net, epoch, b);
        loss = loss.defined() ? loss + extra : extra;
      }
      if (proximal.active()) loss = loss + proximal(net->parameters());
      loss.backward();
      optimizer.step();
      if (extension) extension->afterStep(net);
      lossSum += loss.item<double>();
    }
    if (options.onEpoch) {
      TrainProgress p;
      p.epoch = epoch + 1;
      p.epochs = options.epochs;
      p.loss = lossSum / static_cast<double>(batches);
      p.secondsElapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      p.secondsLeft = p.secondsElapsed / p.epoch * (p.epochs - p.epoch);
      if (extension) extension->reportEpoch(p);
      options.onEpoch(p);
    }
  }
  model.weights = detail::extractWeights(net);
}

Model defaultModelFor(const std::vector<TrainingCase>& cases, const TaskInfo& task, uint64_t seed) {
  if (cases.empty()) throw Error(ErrorCode::BadModel, "training: no image/label pairs given");
  const auto& g = cases.front().image.geometry;
  // Slices are taken across the coarsest axis (the acquisition's slice direction); ties favour z.
  int axis = 2;
  for (int a = 1; a >= 0; --a) {
    if (g.spacing[a] > g.spacing[axis] * 1.01) axis = a;
  }
  double maxExtent = 0.0, finest = 1e9;
  for (int a = 0; a < 3; ++a) {
    if (a == axis) continue;
    maxExtent = std::max(maxExtent, g.spacing[a] * static_cast<double>(g.size[a]));
    finest = std::min(finest, g.spacing[a]);
  }
  Preprocessing prep;
  const double inPlane = std::max(finest, maxExtent / 128.0);
  for (int a = 0; a < 3; ++a) prep.targetSpacing[a] = a == axis ? 0.0 : inPlane;

  int maxLabel = 1;
  for (const auto& c : cases) {
    for (float v : c.labels.voxels) maxLabel = std::max(maxLabel, static_cast<int>(std::lround(v)));
  }
  NetworkSpec spec;
  spec.dims = 2;
  spec.axis = axis;
  spec.classes = maxLabel + 1;
  TaskInfo t = task;
  for (int l = 0; l <= maxLabel; ++l) {
    if (!t.labels.count(l)) t.labels[l] = l == 0 ? "background" : "label " + std::to_string(l);
  }
  return model::initialModel(spec, prep, t, seed);
}

}  // namespace tessera::nn
