#include <chrono>

#include <nlohmann/json.hpp>

#include "UsageEvents.h"
#include "tessera/client/ApiClient.h"
#include "tessera/common/Error.h"
#include "tessera/client/ModelCache.h"
#include "tessera/client/SiteState.h"
#include "tessera/client/SiteTrainer.h"
#include "tessera/federation/Merge.h"
#include "tessera/model/CaseFolder.h"
#include "tessera/common/Error.h"

namespace tessera::client {

namespace {

// The model's merge strategy: the server's word when it answers, the one saved at pull otherwise.
std::string strategyOf(const ClientConfig& config, const ModelCache& cache, std::ostream& log) {
  try {
    ApiClient api(config);
    return api.model(config.task).value("strategy", "");
  } catch (const Error& e) {
    const auto saved = cache.summary(config.task);
    const std::string strategy = saved ? saved->value("strategy", "") : "";
    log << "tessera: warning: cannot ask the server for the merge strategy (" << e.what() << "); "
        << (strategy.empty() ? "assuming it keeps no layers local" : "using '" + strategy + "' from the last pull") << "\n";
    return strategy;
  }
}

bool sameNetwork(const model::Model& a, const model::Model& b) {
  if (model::toJson(a.spec) != model::toJson(b.spec) || a.weights.size() != b.weights.size()) return false;
  for (size_t i = 0; i < a.weights.size(); ++i) {
    if (a.weights[i].name != b.weights[i].name || a.weights[i].shape != b.weights[i].shape) return false;
  }
  return true;
}

std::vector<model::TrainingCase> readCases(const std::filesystem::path& dir, const model::NetworkSpec& spec,
                                           const model::Preprocessing& preprocessing) {
  std::vector<model::NamedCase> named = model::readCaseFolder(dir);
  if (named.empty()) {
    throw Error(ErrorCode::Config, (dir / "images").string() + ": no cases (expected images/NAME.nii.gz with labels/NAME.nii.gz)");
  }
  std::vector<model::TrainingCase> cases;
  for (auto& c : named) {
    try {
      nn::validateTrainingCases({c.data}, spec, preprocessing);
    } catch (const Error& e) {
      // validateTrainingCases names the case by index; the site knows it by file name (the image
      // for an image too small for the network, else the label map).
      const std::string what = e.what();
      const auto colon = what.find(':');
      const bool image = e.code() == ErrorCode::BadImage;
      throw Error(image ? ErrorCode::BadImage : ErrorCode::BadModel,
                  (dir / (image ? "images" : "labels") / c.name).string() + (colon == std::string::npos ? ": " + what : what.substr(colon)));
    }
    cases.push_back(std::move(c.data));
  }
  return cases;
}

}  // namespace

double countSamples(const std::vector<model::TrainingCase>& cases, const model::NetworkSpec& spec) {
  if (spec.dims != 2) return static_cast<double>(cases.size());
  double slices = 0;
  for (const auto& c : cases) slices += static_cast<double>(c.image.geometry.size[spec.axis]);
  return slices;
}

TrainResult train(const ClientConfig& config, const SiteTrainOptions& options, std::ostream& log) {
  ModelCache cache(config.home);
  SiteState state(config.home, config.task);
  const auto baseGeneration = cache.latestCached(config.task);
  if (!baseGeneration) {
    throw Error(ErrorCode::NotFound, cache.folder(config.task).string() + ": no generation of " + config.task +
                                       " has been pulled; run `tessera client pull` first");
  }
  model::Model model = cache.load(config.task, *baseGeneration);
  const std::vector<model::TrainingCase> cases = readCases(options.casesDir, model.spec, model.preprocessing);

  TrainResult result;
  result.baseGeneration = *baseGeneration;
  result.cases = static_cast<int>(cases.size());
  result.samples = countSamples(cases, model.spec);
  try {
    if (const auto previous = state.readTrained(); previous && previous->pushed.is_null()) {
      log << "tessera: warning: replacing the trained model of " << previous->trainedAt << " that was never pushed\n";
    }
  } catch (const Error&) {
    // An unreadable record is what training again is meant to replace.
  }
  result.strategy = strategyOf(config, cache, log);
  if (result.strategy == "fedbn") {
    // FedBN: the server never averages normalisation layers, so each site keeps its own
    // statistics from one round to the next instead of restarting from the global ones.
    if (auto previous = state.previousTrained(); previous && sameNetwork(*previous, model)) {
      federation::keepLocalNormalization(model.weights, previous->weights);
      result.keptLocalNormalization = true;
    } else if (previous) {
      log << "tessera: warning: " << state.trainedModelPath().string()
          << " is a different network; normalisation layers start from the global model\n";
    }
  }
  model.parentGeneration = model.generation;

  log << "fine-tuning " << config.task << " generation " << *baseGeneration << " on " << cases.size() << " case(s) ("
      << result.samples << (model.spec.dims == 2 ? " slices" : " volumes") << "), " << options.epochs << " epochs\n";
  nn::TrainOptions trainOptions;
  trainOptions.epochs = options.epochs;
  trainOptions.seed = options.seed;
  trainOptions.batchSize = options.batchSize;
  trainOptions.learningRate = options.learningRate;
  trainOptions.onEpoch = [&](const nn::TrainProgress& p) {
    result.finalLoss = p.loss;
    if (options.onEpoch) options.onEpoch(p);
  };
  const auto start = std::chrono::steady_clock::now();
  nn::trainModel(model, cases, trainOptions);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  TrainedRecord record;
  record.baseGeneration = *baseGeneration;
  record.samples = result.samples;
  record.metrics = {{"final_loss", result.finalLoss}, {"seconds", result.seconds}};
  record.cases = result.cases;
  record.trainedAt = utcNow();
  state.writeTrained(model, record);
  result.modelPath = state.trainedModelPath();

  reportUsage(config, {{"type", "train"}, {"task", config.task}, {"seconds", result.seconds}}, log);
  return result;
}

}  // namespace tessera::client
