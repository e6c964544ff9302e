#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

#include <nlohmann/json.hpp>

#include "UnlabeledImages.h"
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

// The model's summary (merge strategy, FedProx's μ): the server's word when it answers, the one
// saved at pull otherwise.
nlohmann::json summaryOf(const ClientConfig& config, const ModelCache& cache, std::ostream& log) {
  try {
    ApiClient api(config);
    return api.model(config.task);
  } catch (const Error& e) {
    const auto saved = cache.summary(config.task);
    const std::string strategy = saved ? saved->value("strategy", "") : "";
    log << "tessera: warning: cannot ask the server for the merge strategy (" << e.what() << "); "
        << (strategy.empty() ? "assuming it keeps no layers local" : "using '" + strategy + "' from the last pull") << "\n";
    return saved ? *saved : nlohmann::json::object();
  }
}

// FedProx's μ from the summary; a server without the field (or a bad value) means none.
double proxMuOf(const nlohmann::json& summary) {
  const auto it = summary.find("prox_mu");
  if (it == summary.end() || !it->is_number()) return 0.0;
  const double mu = it->get<double>();
  return std::isfinite(mu) && mu > 0 ? mu : 0.0;
}

bool sameNetwork(const model::Model& a, const model::Model& b) {
  if (model::toJson(a.spec) != model::toJson(b.spec) || a.weights.size() != b.weights.size()) return false;
  for (size_t i = 0; i < a.weights.size(); ++i) {
    if (a.weights[i].name != b.weights[i].name || a.weights[i].shape != b.weights[i].shape) return false;
  }
  return true;
}

std::vector<model::NamedCase> readCases(const std::filesystem::path& dir, const model::NetworkSpec& spec,
                                        const model::Preprocessing& preprocessing) {
  std::vector<model::NamedCase> named = model::readCaseFolder(dir);
  if (named.empty()) {
    throw Error(ErrorCode::Config, (dir / "images").string() + ": no cases (expected images/NAME.nii.gz with labels/NAME.nii.gz)");
  }
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
  }
  return named;
}

// What the person's corrections cost, from the interactions sidecars of the cases just learned:
// one "correct" event each (the server keeps seconds and dice, the Dice of the model's first
// prediction to the accepted mask; clicks and dice_after ride along for newer servers).
nlohmann::json correctionEvents(const ClientConfig& config, const std::filesystem::path& casesDir,
                                const std::vector<std::string>& learned, const std::vector<interactive::CaseDice>& dice,
                                std::ostream& log) {
  nlohmann::json events = nlohmann::json::array();
  for (const auto& name : learned) {
    std::optional<interactive::InteractionFigures> figures;
    try {
      figures = interactive::readInteractionFigures(casesDir, name);
    } catch (const Error& e) {
      log << "tessera: warning: " << e.what() << " (not reported)\n";
    }
    if (!figures) continue;
    nlohmann::json event{{"type", "correct"}, {"task", config.task}};
    if (figures->seconds && *figures->seconds >= 0) event["seconds"] = *figures->seconds;
    if (figures->diceBefore && *figures->diceBefore >= 0 && *figures->diceBefore <= 1) event["dice"] = *figures->diceBefore;
    if (figures->clicks) event["clicks"] = *figures->clicks;
    for (const auto& d : dice) {
      if (d.name == name) event["dice_after"] = d.after;
    }
    events.push_back(std::move(event));
  }
  return events;
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
  const bool continual = options.replay.has_value();
  const bool labelled = !options.casesDir.empty();
  if (!labelled && options.unlabeledDir.empty()) {
    throw Error(ErrorCode::Config, "client train: give --cases (labelled), --unlabeled (images without labels), or both");
  }
  if (continual && !options.unlabeledDir.empty()) {
    throw Error(ErrorCode::Config, "client train: --unlabeled works with plain fine-tuning, not with --replay");
  }
  if (!options.unlabeledDir.empty()) nn::validateSemiSupervisedOptions(options.semiSupervised);
  interactive::CaseSelection selection;   // continual learning
  std::vector<model::NamedCase> allCases;  // plain fine-tuning
  std::vector<std::string> alreadyLearned;
  if (continual) {
    selection = interactive::selectCases(options.casesDir, model);
    if (selection.fresh.empty()) {
      throw Error(ErrorCode::NotFound, options.casesDir.string() + ": nothing new to learn: all " +
                                           std::to_string(selection.recorded) + " case(s) are listed in " +
                                           interactive::learnedRecordPath(options.casesDir).string());
    }
  } else if (labelled) {
    allCases = readCases(options.casesDir, model.spec, model.preprocessing);
    try {
      for (const auto& c : interactive::readLearnedRecord(options.casesDir)) alreadyLearned.push_back(c.name);
    } catch (const Error& e) {
      log << "tessera: warning: " << e.what() << "; every case counts as newly learned\n";
    }
  }

  TrainResult result;
  result.baseGeneration = *baseGeneration;
  std::vector<model::TrainingCase> cases;
  for (const auto& c : allCases) cases.push_back(c.data);
  result.cases = static_cast<int>(cases.size());
  result.samples = countSamples(cases, model.spec);
  std::vector<image::Volume> unlabeled;
  double unlabeledSamples = 0;
  if (!options.unlabeledDir.empty()) {
    auto images = readUnlabeledImages(options.unlabeledDir, model);
    unlabeledSamples = countUnlabeledSamples(images, model.spec);
    for (auto& image : images) unlabeled.push_back(std::move(image.volume));
    result.unlabeledImages = static_cast<int>(unlabeled.size());
  }
  try {
    if (const auto previous = state.readTrained(); previous && previous->pushed.is_null()) {
      log << "tessera: warning: replacing the trained model of " << previous->trainedAt << " that was never pushed\n";
    }
  } catch (const Error&) {
    // An unreadable record is what training again is meant to replace.
  }
  const nlohmann::json summary = summaryOf(config, cache, log);
  result.strategy = summary.is_object() ? summary.value("strategy", "") : "";
  const double proxMu = summary.is_object() ? proxMuOf(summary) : 0.0;
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

  if (continual) {
    log << "learning " << config.task << " generation " << *baseGeneration << " on " << selection.fresh.size()
        << " new case(s), replaying up to " << *options.replay << " of " << selection.earlier.size() << " earlier ("
        << interactive::replaySamplingName(options.replaySampling) << "), " << options.epochs << " epochs\n";
    if (proxMu > 0) log << "tessera: note: the policy's prox_mu applies to fine-tuning; continual learning does not use it\n";
    interactive::ContinualOptions continualOptions;
    continualOptions.epochs = options.epochs;
    continualOptions.learningRate = options.learningRate;
    continualOptions.labelSmoothing = options.labelSmoothing;
    continualOptions.replay = *options.replay;
    continualOptions.sampling = options.replaySampling;
    continualOptions.seed = options.seed;
    continualOptions.batchSize = options.batchSize;
    continualOptions.advanceGeneration = false;  // the base stays the federation's generation
    continualOptions.onEpoch = options.onEpoch;
    const interactive::ContinualResult learned = interactive::learnFromCaseFolder(model, selection, continualOptions);
    result.learned = learned.learned;
    result.replayed = learned.replayed;
    result.dice = learned.dice;
    result.finalLoss = learned.finalLoss;
    result.seconds = learned.seconds;
    result.cases = static_cast<int>(learned.learned.size() + learned.replayed.size());
    result.samples = learned.samples;
  } else {
    const char* unit = model.spec.dims == 2 ? " slices" : " volumes";
    log << "fine-tuning " << config.task << " generation " << *baseGeneration << " on " << cases.size() << " case(s) ("
        << result.samples << unit << ")";
    if (!unlabeled.empty()) {
      log << " and " << unlabeled.size() << " unlabeled image(s) (" << unlabeledSamples << unit
          << "; semi-supervised: EMA teacher decay " << options.semiSupervised.teacherDecay << ", pseudo-labels at confidence "
          << options.semiSupervised.confidence << ", consistency weight " << options.semiSupervised.consistencyWeight << ")";
    }
    log << ", " << options.epochs << " epochs\n";
    nn::TrainOptions trainOptions;
    trainOptions.epochs = options.epochs;
    trainOptions.seed = options.seed;
    trainOptions.batchSize = options.batchSize;
    trainOptions.learningRate = options.learningRate;
    trainOptions.proximalMu = proxMu;
    if (proxMu > 0) log << "FedProx: proximal term mu " << proxMu << " towards generation " << *baseGeneration << "\n";
    trainOptions.onEpoch = [&](const nn::TrainProgress& p) {
      result.finalLoss = p.loss;
      if (options.onEpoch) options.onEpoch(p);
    };
    const auto start = std::chrono::steady_clock::now();
    if (unlabeled.empty()) {
      nn::trainModel(model, cases, trainOptions);
    } else {
      const auto semi = nn::trainSemiSupervised(model, cases, unlabeled, trainOptions, options.semiSupervised);
      result.unlabeledVoxels = semi.unlabeledVoxels;
      result.pseudoLabelledVoxels = semi.pseudoLabelledVoxels;
      // The merge weighs an update by its samples: unlabelled slices count by the share the
      // teacher could label. Counted in full, a site whose teacher was sure of nothing carried a
      // third of a fedavg merge on self-consistency alone and pulled the lobes federation from
      // mean Dice 0.33 to 0.14. A token 0.01 keeps such an update mergeable (samples must be > 0).
      const double fraction = semi.unlabeledVoxels > 0 ? static_cast<double>(semi.pseudoLabelledVoxels) /
                                                            static_cast<double>(semi.unlabeledVoxels)
                                                      : 0.0;
      result.samples = std::max(0.01, result.samples + unlabeledSamples * fraction);
      log << "semi-supervised: the teacher pseudo-labelled " << semi.pseudoLabelledVoxels << " of " << semi.unlabeledVoxels
          << " unlabeled voxels in the last epoch\n";
    }
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (const auto& c : allCases) {
      if (std::find(alreadyLearned.begin(), alreadyLearned.end(), c.name) == alreadyLearned.end()) result.learned.push_back(c.name);
    }
  }

  TrainedRecord record;
  record.baseGeneration = *baseGeneration;
  record.samples = result.samples;
  record.metrics = {{"final_loss", result.finalLoss}, {"seconds", result.seconds}};
  if (result.unlabeledImages > 0) {
    record.metrics["unlabeled_images"] = result.unlabeledImages;
    record.metrics["unlabeled_samples"] = unlabeledSamples;
    record.metrics["pseudo_labelled_fraction"] =
        result.unlabeledVoxels > 0 ? static_cast<double>(result.pseudoLabelledVoxels) / static_cast<double>(result.unlabeledVoxels) : 0.0;
  }
  record.cases = result.cases;
  record.trainedAt = utcNow();
  state.writeTrained(model, record);
  result.modelPath = state.trainedModelPath();
  try {
    if (labelled) interactive::recordLearned(options.casesDir, result.learned, model);
  } catch (const Error& e) {
    // Plain fine-tuning reads folders that may be read-only datasets; continual learning needs the record.
    if (continual) throw;
    log << "tessera: warning: " << e.what() << " (the cases are not recorded as learned)\n";
  }

  nlohmann::json events =
      labelled ? correctionEvents(config, options.casesDir, result.learned, result.dice, log) : nlohmann::json::array();
  nlohmann::json trainEvent{{"type", "train"}, {"task", config.task}, {"seconds", result.seconds}};
  if (!result.dice.empty()) {
    double sum = 0;
    for (const auto& d : result.dice) sum += d.after;
    trainEvent["dice"] = sum / static_cast<double>(result.dice.size());  // the new cases, after learning
  }
  events.insert(events.begin(), trainEvent);
  reportUsageEvents(config, events, log);
  return result;
}

}  // namespace tessera::client
