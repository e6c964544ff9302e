#include "tessera/nn/SemiSupervised.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "ConsistencyLoss.h"
#include "EmaTeacher.h"
#include "IntensityPerturbation.h"
#include "PseudoLabels.h"
#include "TrainingExtension.h"
#include "VolumeTensors.h"
#include "tessera/common/Error.h"

namespace tessera::nn {

namespace {

// Batch normalisation in training mode uses the batch's statistics but, for this object's
// lifetime, leaves the running ones (what inference uses) as they are: momentum 0.
class FrozenRunningStatistics {
 public:
  explicit FrozenRunningStatistics(detail::UNet& net) {
    for (const auto& module : net->modules(false)) {
      if (auto bn = std::dynamic_pointer_cast<torch::nn::BatchNorm2dImpl>(module)) {
        saved_.emplace_back(&bn->options, bn->options.momentum());
      } else if (auto bn3 = std::dynamic_pointer_cast<torch::nn::BatchNorm3dImpl>(module)) {
        saved_.emplace_back(&bn3->options, bn3->options.momentum());
      }
    }
    for (auto& [options, momentum] : saved_) options->momentum(0.0);
  }
  ~FrozenRunningStatistics() {
    for (auto& [options, momentum] : saved_) options->momentum(momentum);
  }
  FrozenRunningStatistics(const FrozenRunningStatistics&) = delete;
  FrozenRunningStatistics& operator=(const FrozenRunningStatistics&) = delete;

 private:
  std::vector<std::pair<torch::nn::BatchNormOptions*, c10::optional<double>>> saved_;
};

// The unlabelled half of semi-supervised training, plugged into trainModel's loop.
class UnlabeledTerm : public detail::TrainingExtension {
 public:
  UnlabeledTerm(const Model& model, const std::vector<image::Volume>& images, const TrainOptions& options,
                const SemiSupervisedOptions& semi)
      : spec_(model.spec), semi_(semi), teacher_(model.spec, model.weights, semi.teacherDecay),
        channelsLast_(model.spec.dims == 2) {
    if (channelsLast_) detail::toChannelsLast(teacher_.network());
    batchSize_ = spec_.dims == 2 ? options.batchSize : std::min(options.batchSize, 2);
    if (spec_.dims == 2) {
      prepareSlices(model, images);
    } else {
      preparePatches(model, images);
    }
  }

  int64_t stepsPerEpoch() const override { return steps_; }

  void startEpoch(int, int epochs, std::mt19937_64& rng) override {
    epochs_ = epochs;
    seen_ = kept_ = 0;
    if (spec_.dims == 2) {
      std::iota(order_.begin(), order_.end(), 0);
      std::shuffle(order_.begin(), order_.end(), rng);
    } else {
      rng_ = &rng;
    }
  }

  torch::Tensor loss(detail::UNet& student, int epoch, int64_t step) override {
    auto [x, valid] = batch(step % steps_);
    const auto pseudo = detail::confidentPseudoLabels(teacher_.probabilities(networkInput(x)), semi_.confidence, valid);
    seen_ += pseudo.seen;
    kept_ += pseudo.kept;
    // The student sees one perturbation, the teacher another: the student's answer should not
    // depend on the scanner's contrast, bias or noise. The target is the teacher's, fixed, as in
    // Mean Teacher; two student outputs pulled together let the network drift towards answers
    // that agree because they say little (measured on phantoms: Dice on the unlabelled scanner
    // fell from 0.97 to 0.56-0.81 in unlabelled-only training, to 0.94 with the teacher's target).
    const auto target = teacher_.logits(networkInput(detail::perturbIntensity(x)));
    const auto logits = [&] {
      // Perturbed images are not what the model will be used on: their batch statistics
      // normalise this pass but do not move the running ones inference uses.
      FrozenRunningStatistics frozen(student);
      return student->forward(networkInput(detail::perturbIntensity(x)));
    }();
    const auto pseudoTerm = detail::pseudoLabelLoss(logits, pseudo);
    const auto consistency = detail::consistencyLoss(logits, target, valid);
    return (pseudoTerm * semi_.pseudoLabelWeight + consistency * semi_.consistencyWeight) * rampWeight(epoch, step);
  }

  void afterStep(detail::UNet& student) override { teacher_.update(student); }

  void reportEpoch(TrainProgress& progress) const override {
    progress.unlabeledVoxels = seen_;
    progress.pseudoLabelledVoxels = kept_;
  }

 private:
  // λ_u: exp(−5(1 − t)²) while t = progress / ramp-up length < 1 (Laine & Aila's sigmoid ramp).
  double rampWeight(int epoch, int64_t step) const {
    const double length = semi_.rampUp * epochs_;
    if (length <= 0) return 1.0;
    const double t = (epoch + static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, steps_))) / length;
    return t >= 1 ? 1.0 : std::exp(-5.0 * (1 - t) * (1 - t));
  }

  // Interactive models get empty guidance channels: no clicks on unlabelled scans.
  torch::Tensor networkInput(torch::Tensor x) const {
    if (spec_.guidanceChannels > 0) {
      auto shape = x.sizes().vec();
      shape[1] = spec_.guidanceChannels;
      x = torch::cat({x, torch::zeros(shape, x.options())}, 1);
    }
    return channelsLast_ ? x.contiguous(torch::MemoryFormat::ChannelsLast) : x;
  }

  void prepareSlices(const Model& model, const std::vector<image::Volume>& images) {
    std::vector<torch::Tensor> slices;
    int64_t a = 0, b = 0;
    for (const auto& image : images) {
      slices.push_back(detail::slicesAcross(detail::toTensor(model::preprocessImage(image, model.preprocessing)), spec_.axis));
      a = std::max(a, slices.back().size(1));
      b = std::max(b, slices.back().size(2));
    }
    std::vector<torch::Tensor> padded, valid;
    for (const auto& s : slices) {
      const double background = s.min().item<double>();
      padded.push_back(detail::padToMultiple(s, 2, spec_.sizeMultiple(), {a, b}, background));
      // Padding is not data: it is neither pseudo-labelled nor compared.
      valid.push_back(detail::padToMultiple(torch::ones_like(s), 2, spec_.sizeMultiple(), {a, b}, 0));
    }
    images_ = {torch::cat(padded, 0).unsqueeze(1).contiguous()};
    valid_ = {torch::cat(valid, 0).contiguous()};
    order_.resize(static_cast<size_t>(images_[0].size(0)));
    steps_ = (images_[0].size(0) + batchSize_ - 1) / batchSize_;
  }

  void preparePatches(const Model& model, const std::vector<image::Volume>& images) {
    patch_ = {spec_.patch[2], spec_.patch[1], spec_.patch[0]};
    int64_t voxels = 0;
    for (const auto& image : images) {
      const auto t = detail::toTensor(model::preprocessImage(image, model.preprocessing));
      const double background = t.min().item<double>();
      images_.push_back(detail::padToMultiple(t, 3, 1, patch_, background).unsqueeze(0).contiguous());
      valid_.push_back(detail::padToMultiple(torch::ones_like(t), 3, 1, patch_, 0).contiguous());
      voxels += images_.back().numel();
    }
    const int64_t perStep = patch_[0] * patch_[1] * patch_[2] * batchSize_;
    steps_ = std::max<int64_t>(1, (voxels + perStep - 1) / perStep);
  }

  // images [N, 1, ...] and their valid-voxel mask [N, ...].
  std::pair<torch::Tensor, torch::Tensor> batch(int64_t step) {
    if (spec_.dims == 2) {
      const auto begin = static_cast<size_t>(step * batchSize_);
      const auto end = std::min(order_.size(), begin + static_cast<size_t>(batchSize_));
      const auto idx = torch::tensor(std::vector<int64_t>(order_.begin() + static_cast<std::ptrdiff_t>(begin),
                                                          order_.begin() + static_cast<std::ptrdiff_t>(end)));
      return {images_[0].index_select(0, idx), valid_[0].index_select(0, idx)};
    }
    using torch::indexing::Slice;
    std::vector<torch::Tensor> xs, vs;
    for (int i = 0; i < batchSize_; ++i) {
      const size_t c = std::uniform_int_distribution<size_t>(0, images_.size() - 1)(*rng_);
      std::vector<Slice> at;
      for (int d = 0; d < 3; ++d) {
        const int64_t start = std::uniform_int_distribution<int64_t>(0, valid_[c].size(d) - patch_[static_cast<size_t>(d)])(*rng_);
        at.emplace_back(start, start + patch_[static_cast<size_t>(d)]);
      }
      xs.push_back(images_[c].index({Slice(), at[0], at[1], at[2]}));
      vs.push_back(valid_[c].index({at[0], at[1], at[2]}));
    }
    return {torch::stack(xs), torch::stack(vs)};
  }

  NetworkSpec spec_;
  SemiSupervisedOptions semi_;
  detail::EmaTeacher teacher_;
  bool channelsLast_;
  int batchSize_ = 1;
  std::vector<torch::Tensor> images_, valid_;  // 2D: one stack of every slice; 3D: one per image
  std::vector<size_t> order_;
  std::vector<int64_t> patch_;
  std::mt19937_64* rng_ = nullptr;
  int64_t steps_ = 1;
  int epochs_ = 1;
  int64_t seen_ = 0, kept_ = 0;
};

void checkUnlabeledImages(const std::vector<image::Volume>& images, const Model& model) {
  for (size_t i = 0; i < images.size(); ++i) {
    const std::string which = "unlabeled image " + std::to_string(i + 1);
    if (images[i].voxels.empty()) throw Error(ErrorCode::BadImage, which + ": the image is empty");
    // The labelled cases' size check, on a blank label map of the image's grid.
    try {
      TrainingCase blank;
      blank.image = images[i];
      blank.labels = image::Volume(images[i].geometry);
      validateTrainingCases({blank}, model.spec, model.preprocessing);
    } catch (const Error& e) {
      const std::string what = e.what();
      const auto colon = what.find(':');
      throw Error(e.code(), which + (colon == std::string::npos ? ": " + what : what.substr(colon)));
    }
  }
}

}  // namespace

void validateSemiSupervisedOptions(const SemiSupervisedOptions& semi) {
  auto inRange = [](double v, double low, double high) { return std::isfinite(v) && v >= low && v <= high; };
  auto bad = [](const std::string& what, double v) {
    throw Error(ErrorCode::BadModel, "semi-supervised training: " + what + ", got " + std::to_string(v));
  };
  if (!inRange(semi.teacherDecay, 0.0, 1.0)) bad("teacher decay must be in [0, 1]", semi.teacherDecay);
  if (!inRange(semi.confidence, 0.0, 1.0)) bad("confidence must be in [0, 1]", semi.confidence);
  if (!inRange(semi.pseudoLabelWeight, 0.0, 1e6)) bad("pseudo-label weight must be a finite number >= 0", semi.pseudoLabelWeight);
  if (!inRange(semi.consistencyWeight, 0.0, 1e6)) bad("consistency weight must be a finite number >= 0", semi.consistencyWeight);
  if (!inRange(semi.rampUp, 0.0, 1.0)) bad("ramp-up must be a fraction of the epochs in [0, 1]", semi.rampUp);
}

SemiSupervisedResult trainSemiSupervised(Model& model, const std::vector<TrainingCase>& labelled,
                                         const std::vector<image::Volume>& unlabeled, const TrainOptions& options,
                                         const SemiSupervisedOptions& semi) {
  validateSemiSupervisedOptions(semi);
  if (labelled.empty() && unlabeled.empty()) {
    throw Error(ErrorCode::BadModel, "training: neither labelled cases nor unlabeled images given");
  }
  model.spec.validate();
  checkUnlabeledImages(unlabeled, model);
  if (options.batchSize < 1) throw Error(ErrorCode::BadModel, "training: batch size must be at least 1");

  SemiSupervisedResult result;
  TrainOptions withResult = options;
  withResult.onEpoch = [&](const TrainProgress& p) {
    result.finalLoss = p.loss;
    result.unlabeledVoxels = p.unlabeledVoxels;
    result.pseudoLabelledVoxels = p.pseudoLabelledVoxels;
    if (options.onEpoch) options.onEpoch(p);
  };
  if (unlabeled.empty()) {
    detail::trainModel(model, labelled, withResult, nullptr);
    return result;
  }
  UnlabeledTerm term(model, unlabeled, options, semi);
  detail::trainModel(model, labelled, withResult, &term);
  return result;
}

}  // namespace tessera::nn
