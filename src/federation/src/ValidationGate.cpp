#include "tessera/federation/ValidationGate.h"

#include <cstdio>

#include "tessera/model/CaseFolder.h"

namespace tessera::federation {

ValidationSet ValidationSet::load(const std::filesystem::path& directory) {
  ValidationSet set;
  std::error_code ec;
  if (!std::filesystem::is_directory(directory / "images", ec)) return set;
  for (auto& c : model::readCaseFolder(directory)) set.cases.push_back(std::move(c.data));
  return set;
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
