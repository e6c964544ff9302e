#pragma once
// Training and fine-tuning a model on image/label pairs.

#include <cstdint>
#include <functional>
#include <vector>

#include "tessera/image/Volume.h"
#include "tessera/nn/Model.h"

namespace tessera::nn {

struct TrainingCase {
  image::Volume image;
  image::Volume labels;  // same grid as image; integer values 0..classes-1
};

struct TrainProgress {
  int epoch = 0;  // 1-based, the epoch just finished
  int epochs = 0;
  double loss = 0.0;  // mean training loss of that epoch
  double secondsElapsed = 0.0;
  double secondsLeft = 0.0;
};

struct TrainOptions {
  int epochs = 30;
  int batchSize = 8;
  double learningRate = 2e-3;
  uint64_t seed = 1;
  // Intensity augmentation (random gamma, scale and noise) makes models robust to scanner shift.
  bool augment = true;
  std::function<void(const TrainProgress&)> onEpoch;
};

// Checks every case (geometry match, label range) and throws ModelError naming the case index
// and the problem.
void validateTrainingCases(const std::vector<TrainingCase>& cases, const NetworkSpec& spec);

// Trains `model` in place, starting from its current weights (fine-tuning when they come from a
// trained model). Deterministic for a given seed when LibTorch runs on one thread.
void trainModel(Model& model, const std::vector<TrainingCase>& cases, const TrainOptions& options);

// A default network and preprocessing for the given data: 2D slice-wise across the axis with
// the coarsest spacing, in-plane spacing chosen so slices are about 128 voxels across.
Model defaultModelFor(const std::vector<TrainingCase>& cases, const TaskInfo& task, uint64_t seed);

}  // namespace tessera::nn
