#pragma once
// Extra loss terms trainModel's loop adds to each optimisation step, for training schemes that
// learn from more than labelled batches (semi-supervised learning's unlabelled images). Private
// to nn.

#include <cstdint>
#include <random>
#include <vector>

#include <torch/torch.h>

#include "UNet.h"
#include "tessera/nn/Training.h"

namespace tessera::nn::detail {

class TrainingExtension {
 public:
  virtual ~TrainingExtension() = default;
  // Steps this extension needs per epoch; an epoch takes the larger of this and the labelled
  // batches, the shorter side cycling.
  virtual int64_t stepsPerEpoch() const = 0;
  virtual void startEpoch(int epoch, int epochs, std::mt19937_64& rng) = 0;
  // Added to the step's supervised loss (or the whole loss when there are no labelled cases);
  // `student` is the network being trained, in training mode.
  virtual torch::Tensor loss(UNet& student, int epoch, int64_t step) = 0;
  // After the optimiser's step.
  virtual void afterStep(UNet& student) = 0;
  virtual void reportEpoch(TrainProgress& progress) const = 0;
};

// trainModel with an extension (null: plain trainModel). With an extension `cases` may be empty.
void trainModel(Model& model, const std::vector<TrainingCase>& cases, const TrainOptions& options,
                TrainingExtension* extension);

}  // namespace tessera::nn::detail
