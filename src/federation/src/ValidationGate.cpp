#include "tessera/federation/ValidationGate.h"

#include <cstdio>

#include "tessera/image/Metrics.h"
#include "tessera/nn/CaseFolder.h"
#include "tessera/nn/Inference.h"

namespace tessera::federation {

ValidationSet ValidationSet::load(const std::filesystem::path& directory) {
  ValidationSet set;
  std::error_code ec;
  if (!std::filesystem::is_directory(directory / "images", ec)) return set;
  for (auto& c : nn::readCaseFolder(directory)) set.cases.push_back(std::move(c.data));
  return set;
}

double foregroundDice(const image::Volume& prediction, const image::Volume& truth, const nn::TaskInfo& task) {
  double sum = 0;
  int labels = 0;
  for (const auto& [label, name] : task.labels) {
    if (label < 1) continue;
    sum += image::diceScore(prediction, truth, label);
    ++labels;
  }
  return labels ? sum / labels : 0.0;
}

double meanDice(const nn::Model& model, const ValidationSet& set) {
  if (set.cases.empty()) throw std::invalid_argument("meanDice: the validation set is empty");
  double total = 0;
  for (const auto& c : set.cases) total += foregroundDice(nn::segment(model, c.image), c.labels, model.task);
  return total / static_cast<double>(set.cases.size());
}

GateDecision decide(std::optional<double> diceBefore, std::optional<double> diceAfter, int cases, double tolerance) {
  GateDecision d;
  d.diceBefore = diceBefore;
  d.diceAfter = diceAfter;
  d.cases = cases;
  if (diceBefore && diceAfter && *diceAfter < *diceBefore - tolerance) {
    char text[200];
    std::snprintf(text, sizeof text,
                  "validation Dice would drop from %.4f to %.4f (by %.4f), more than the policy's tolerance %.4f",
                  *diceBefore, *diceAfter, *diceBefore - *diceAfter, tolerance);
    d.publish = false;
    d.reason = text;
  }
  return d;
}

}  // namespace tessera::federation
