#include "tessera/simulation/Attacks.h"

#include <cmath>
#include <random>
#include <stdexcept>

#include "tessera/client/ModelCache.h"
#include "tessera/client/SiteState.h"
#include "tessera/common/Error.h"

namespace tessera::simulation {

namespace {

bool isRunningStatistic(const std::string& name) {
  return name.find("running_") != std::string::npos || name.find("num_batches_tracked") != std::string::npos;
}

}  // namespace

std::string toString(Attack attack) {
  switch (attack) {
    case Attack::SignFlip: return "sign-flip";
    case Attack::Scale: return "scale";
    case Attack::Noise: return "noise";
    case Attack::LabelFlip: return "label-flip";
  }
  return "?";
}

Attack attackFromString(const std::string& text) {
  if (text == "sign-flip") return Attack::SignFlip;
  if (text == "scale") return Attack::Scale;
  if (text == "noise") return Attack::Noise;
  if (text == "label-flip") return Attack::LabelFlip;
  throw std::invalid_argument("--attack '" + text + "' is not one of sign-flip, scale, noise, label-flip");
}

bool poisonsTheModel(Attack attack) { return attack != Attack::LabelFlip; }

void poisonTrainedModel(const std::filesystem::path& home, const std::string& task, Attack attack, uint64_t seed) {
  if (!poisonsTheModel(attack)) return;
  client::SiteState state(home, task);
  const auto record = state.readTrained();
  if (!record) throw Error(ErrorCode::NotFound, state.trainedInfoPath().string() + ": nothing trained to poison");
  model::Model trained = state.loadTrained(*record);
  const model::Model base = client::ModelCache(home).load(task, record->baseGeneration);
  double squaredNorm = 0;
  size_t learnable = 0;
  for (size_t t = 0; t < trained.weights.size(); ++t) {
    if (isRunningStatistic(trained.weights[t].name)) continue;
    for (size_t k = 0; k < trained.weights[t].values.size(); ++k) {
      const double d = double(trained.weights[t].values[k]) - base.weights[t].values[k];
      squaredNorm += d * d;
      ++learnable;
    }
  }
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> gaussian(0.0, 3.0 * std::sqrt(squaredNorm / static_cast<double>(std::max<size_t>(learnable, 1))));
  for (size_t t = 0; t < trained.weights.size(); ++t) {
    if (isRunningStatistic(trained.weights[t].name)) continue;
    auto& values = trained.weights[t].values;
    const auto& b = base.weights[t].values;
    for (size_t k = 0; k < values.size(); ++k) {
      const double d = double(values[k]) - b[k];
      const double poisoned = attack == Attack::SignFlip ? -2.0 * d : attack == Attack::Scale ? 10.0 * d : gaussian(rng);
      values[k] = static_cast<float>(b[k] + poisoned);
    }
  }
  state.writeTrained(trained, *record);
}

model::TrainingCase withFlippedLabels(model::TrainingCase c) {
  for (auto& v : c.labels.voxels) v = v > 0.5f ? 0.0f : 1.0f;
  return c;
}

}  // namespace tessera::simulation
