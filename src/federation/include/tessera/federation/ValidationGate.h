#pragma once
// Scores candidate generations on the server's held validation cases and decides whether one
// may be published.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "tessera/nn/Model.h"
#include "tessera/nn/Training.h"

namespace tessera::federation {

struct ValidationSet {
  std::vector<nn::TrainingCase> cases;
  // Reads pairs DIR/images/NAME.nii.gz + DIR/labels/NAME.nii.gz; empty set when DIR is missing.
  static ValidationSet load(const std::filesystem::path& directory);
};

// Dice averaged over the task's foreground labels (≥ 1).
double foregroundDice(const image::Volume& prediction, const image::Volume& truth, const nn::TaskInfo& task);

// foregroundDice of the model's segmentations, averaged over the cases.
double meanDice(const nn::Model& model, const ValidationSet& set);

struct GateDecision {
  bool publish = true;
  std::optional<double> diceBefore;
  std::optional<double> diceAfter;
  int cases = 0;
  std::string reason;  // why it was held back
};

GateDecision decide(std::optional<double> diceBefore, std::optional<double> diceAfter, int cases, double tolerance);

}  // namespace tessera::federation
