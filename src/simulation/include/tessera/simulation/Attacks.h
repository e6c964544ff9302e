#pragma once
// Hostile sites for `tessera simulate --malicious K --attack A`. Model poisoning rewrites what a
// site trained before it pushes (the update then travels, signed and checked, like any other);
// data poisoning trains on wrong labels.
//   sign-flip   Δ → −2·Δ: pushes the model back along the site's own progress
//   scale       Δ → 10·Δ: one site's update outweighs the rest of the round
//   noise       Δ → Gaussian noise of 3 times Δ's norm: an update that carries no information
//   label-flip  trains on labels 0 ↔ 1 (every corrected slice says background is brain)
// Model attacks change learnable tensors only; batch-norm running statistics stay as trained
// (a negative variance would only make the update fail the server's checks).

#include <cstdint>
#include <filesystem>
#include <string>

#include "tessera/model/CaseFolder.h"

namespace tessera::simulation {

enum class Attack { SignFlip, Scale, Noise, LabelFlip };

std::string toString(Attack attack);
Attack attackFromString(const std::string& text);  // std::invalid_argument naming the choices
bool poisonsTheModel(Attack attack);               // false: label-flip poisons the data

// Replaces the trained model in `home` (tessera client's site state for `task`) by
// base + f(trained − base), keeping the record consistent so that `tessera client push` sends it.
void poisonTrainedModel(const std::filesystem::path& home, const std::string& task, Attack attack, uint64_t seed);

// The case with labels 0 and 1 swapped.
model::TrainingCase withFlippedLabels(model::TrainingCase c);

}  // namespace tessera::simulation
