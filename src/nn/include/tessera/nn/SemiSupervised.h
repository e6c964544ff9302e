#pragma once
// Semi-supervised training: a site whose scans carry no labels still teaches the model (as in
// the multi-national chest-CT federated semi-supervised COVID-19 study, Yang et al. 2021). On
// unlabelled images the student learns from two signals:
//   - pseudo-labels from a teacher, an exponential moving average of the student's own weights
//     (Mean Teacher, Tarvainen & Valpola 2017) that starts as the generation training starts
//     from; only voxels where the teacher's largest softmax probability reaches `confidence`
//     count (FixMatch's filter), the rest get loss weight 0;
//   - consistency: the student's softmax on one intensity perturbation of the image (gamma, bias
//     field, noise: scanner differences, never geometry) should match the teacher's on another
//     (the teacher's side is a fixed target: two student outputs pulled together drifted towards
//     uninformative agreement). Batch normalisation normalises the student's perturbed pass with
//     its own statistics but keeps the running ones those of real images.
// Both are scaled by λ_u, which ramps up over the first part of training so the student does
// not chase a teacher's early mistakes.

#include <cstdint>
#include <vector>

#include "tessera/common/WeightRecords.h"
#include "tessera/image/Volume.h"
#include "tessera/model/CaseFolder.h"
#include "tessera/model/Model.h"
#include "tessera/nn/Training.h"

namespace tessera::nn {

struct SemiSupervisedOptions {
  // Teacher ← decay·teacher + (1 − decay)·student after every optimisation step.
  double teacherDecay = 0.99;
  // The teacher's largest class probability a voxel needs to be pseudo-labelled.
  double confidence = 0.9;
  // Weights of the two unlabelled terms inside λ_u (the pseudo-label term is class-balanced:
  // PseudoLabels.h).
  double pseudoLabelWeight = 1.0;
  double consistencyWeight = 1.0;
  // λ_u rises as exp(−5(1 − t)²) over this fraction of the epochs, then stays 1 (0: 1 at once).
  double rampUp = 0.3;
};

struct SemiSupervisedResult {
  double finalLoss = 0.0;
  // Over the last epoch: voxels of unlabelled images the teacher saw, and those that passed the
  // confidence filter.
  int64_t unlabeledVoxels = 0;
  int64_t pseudoLabelledVoxels = 0;
};

// Trains `model` in place on `labelled` cases (the usual supervised loss; partial labels and
// per-voxel weights as in trainModel) plus `unlabeled` images (any grid; each is preprocessed
// like a case image). Either list may be empty, not both. One epoch is as many steps as the
// longer of the two takes; the shorter is cycled. options.onEpoch's TrainProgress carries the
// epoch's unlabelled and pseudo-labelled voxel counts. Throws Error(BadModel) for bad options,
// Error(BadImage) naming "unlabeled image N" for an image the network cannot take.
SemiSupervisedResult trainSemiSupervised(model::Model& model, const std::vector<model::TrainingCase>& labelled,
                                         const std::vector<image::Volume>& unlabeled, const TrainOptions& options,
                                         const SemiSupervisedOptions& semi = {});

// The teacher's update on plain weight records, the same arithmetic the trainer applies to its
// tensors: every value t ← decay·t + (1 − decay)·s, except batch-norm step counters
// (`num_batches_tracked`), which are copied. Tensors must match by name and shape (BadModel).
void updateEmaTeacher(common::WeightSet& teacher, const common::WeightSet& student, double decay);

// Throws Error(BadModel) naming the first option out of range.
void validateSemiSupervisedOptions(const SemiSupervisedOptions& semi);

}  // namespace tessera::nn
