#pragma once
// Training and fine-tuning a model on image/label pairs (LibTorch, behind this Torch-free header).

#include <cstdint>
#include <functional>
#include <vector>

#include "tessera/image/Volume.h"
#include "tessera/model/CaseFolder.h"
#include "tessera/model/Model.h"

namespace tessera::nn {

struct TrainProgress {
  int epoch = 0;  // 1-based, the epoch just finished
  int epochs = 0;
  double loss = 0.0;  // mean training loss of that epoch
  double secondsElapsed = 0.0;
  double secondsLeft = 0.0;
  // Semi-supervised training (SemiSupervised.h) only: the epoch's unlabelled voxels the teacher
  // saw and those confident enough to be pseudo-labelled.
  int64_t unlabeledVoxels = 0;
  int64_t pseudoLabelledVoxels = 0;
};

struct TrainOptions {
  int epochs = 30;
  int batchSize = 8;
  double learningRate = 2e-3;
  uint64_t seed = 1;
  // Intensity augmentation (random gamma, scale and noise) makes models robust to scanner shift.
  bool augment = true;
  // Label smoothing of the cross-entropy targets (0: none; 0.1 is typical for continual
  // fine-tuning, where over-confident targets speed up forgetting).
  double labelSmoothing = 0.0;
  // Click simulation, used when the spec has guidance channels: per batch, with probability
  // noClickProbability the network sees no clicks (so one model serves automatic use); otherwise
  // clicks are drawn from the label's false-negative (positive) and false-positive (negative)
  // regions of the network's current prediction, over clickIterations rounds of predict-click.
  struct ClickSimulation {
    double noClickProbability = 0.3;
    int clickIterations = 2;
    int maxClicksPerIteration = 3;
    // The simulated user's protocol (interactive::SimulatedUser, NoC): each iteration one click
    // per sample, at the deepest voxel of all its errors (about the centre of the largest error
    // region), positive in a miss and negative in a false positive; maxClicksPerIteration unused.
    bool oneClickAtLargestError = false;
  } clicks;
  // FedProx: adds (μ/2)·‖w − w₀‖² to the loss, w₀ the weights training starts from (on a site,
  // the pulled generation), so skewed local data cannot pull the model far from it. 0: off.
  double proximalMu = 0.0;
  std::function<void(const TrainProgress&)> onEpoch;
};

// Checks every case (geometry match, label range, and for 2D networks an image large enough
// for the network at the `preprocessing` spacing: 2^depth voxels along each in-plane axis,
// BadImage otherwise) and throws Error naming the case index and the problem.
void validateTrainingCases(const std::vector<model::TrainingCase>& cases, const model::NetworkSpec& spec,
                           const model::Preprocessing& preprocessing = {});

// Cases may carry per-voxel weights (TrainingCase::weights) that scale their loss.
// Trains `model` in place, starting from its current weights (fine-tuning when they come from a
// trained model). Deterministic for a given seed when LibTorch runs on one thread.
void trainModel(model::Model& model, const std::vector<model::TrainingCase>& cases, const TrainOptions& options);

// A default network and preprocessing for the given data: 2D slice-wise across the axis with
// the coarsest spacing, in-plane spacing chosen so slices are about 128 voxels across.
model::Model defaultModelFor(const std::vector<model::TrainingCase>& cases, const model::TaskInfo& task, uint64_t seed);

}  // namespace tessera::nn
