#pragma once
// The server's held validation cases and the rule that decides whether a candidate generation
// may be published (the scoring itself runs the network: nn::meanDice).

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "tessera/model/Model.h"
#include "tessera/model/CaseFolder.h"

namespace tessera::federation {

struct ValidationSet {
  std::vector<model::TrainingCase> cases;
  // Reads pairs DIR/images/NAME.nii.gz + DIR/labels/NAME.nii.gz; empty set when DIR is missing.
  static ValidationSet load(const std::filesystem::path& directory);
};

struct GateDecision {
  bool publish = true;
  std::optional<double> diceBefore;
  std::optional<double> diceAfter;
  int cases = 0;
  std::string reason;  // why it was held back
};

GateDecision decide(std::optional<double> diceBefore, std::optional<double> diceAfter, int cases, double tolerance);

}  // namespace tessera::federation
