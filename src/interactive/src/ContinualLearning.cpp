#include "tessera/interactive/ContinualLearning.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "tessera/common/AtomicFile.h"
#include "tessera/common/Error.h"
#include "tessera/image/ImageIO.h"
#include "tessera/model/Dataset.h"
#include "tessera/model/TaskInfo.h"
#include "tessera/nn/Inference.h"

namespace tessera::interactive {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path proxyWeightsPath(const fs::path& casesDir, const std::string& name) {
  return casesDir / "weights" / (name + ".nii.gz");
}
fs::path interactionsPath(const fs::path& casesDir, const std::string& name) {
  return casesDir / "interactions" / (name + ".json");
}
fs::path learnedRecordPath(const fs::path& casesDir) { return casesDir / "learned.json"; }

namespace {

constexpr const char* kLearnedFormat = "tessera-learned";

std::string utcNow() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

json readJsonObject(const fs::path& path) {
  json j;
  try {
    j = json::parse(common::readFile(path));
  } catch (const json::exception& e) {
    throw Error(ErrorCode::Corrupt, path.string() + ": not valid JSON (" + std::string(e.what()).substr(0, 120) + ")");
  }
  if (!j.is_object()) throw Error(ErrorCode::Corrupt, path.string() + ": not a JSON object");
  return j;
}

void validateAgainstModel(const fs::path& casesDir, const model::NamedCase& c, const model::Model& model) {
  try {
    nn::validateTrainingCases({c.data}, model.spec, model.preprocessing);
  } catch (const Error& e) {
    // validateTrainingCases names "training case 1"; the site knows the case by its file.
    const std::string what = e.what();
    const auto colon = what.find(':');
    const bool image = e.code() == ErrorCode::BadImage;
    throw Error(image ? ErrorCode::BadImage : ErrorCode::BadModel,
                (casesDir / (image ? "images" : "labels") / c.name).string() +
                    (colon == std::string::npos ? ": " + what : what.substr(colon)) + " (model " + model.task.name +
                    ", " + std::to_string(model.spec.classes) + " classes)");
  }
}

image::Volume readProxyWeights(const fs::path& casesDir, const model::NamedCase& c) {
  const fs::path path = proxyWeightsPath(casesDir, c.name);
  if (!fs::exists(path)) return {};
  image::Volume w = image::readImage(path);
  if (!w.geometry.sameGrid(c.data.image.geometry)) {
    throw Error(ErrorCode::BadImage, path.string() + ": weights grid " + w.geometry.describe() + " differs from the image's " +
                                         c.data.image.geometry.describe());
  }
  for (float v : w.voxels) {
    if (!(v >= 0.0f && v <= 1.0f)) {
      throw Error(ErrorCode::BadImage, path.string() + ": weight " + std::to_string(v) + " is outside 0..1");
    }
  }
  return w;
}

double diceOf(const model::Model& model, const model::TrainingCase& c) {
  return model::foregroundDice(nn::segment(model, c.image), c.labels, model.task);
}

}  // namespace

std::vector<LearnedCase> readLearnedRecord(const fs::path& casesDir) {
  const fs::path path = learnedRecordPath(casesDir);
  if (!fs::exists(path)) return {};
  const json j = readJsonObject(path);
  if (j.value("format", "") != kLearnedFormat || !j.contains("cases") || !j["cases"].is_array()) {
    throw Error(ErrorCode::Corrupt, path.string() + ": not a learned-cases record (expected format \"" +
                                        kLearnedFormat + "\" with a \"cases\" list)");
  }
  std::vector<LearnedCase> out;
  for (const json& e : j["cases"]) {
    if (!e.is_object() || !e.contains("name") || !e["name"].is_string()) {
      throw Error(ErrorCode::Corrupt, path.string() + ": an entry of \"cases\" has no \"name\" string");
    }
    LearnedCase c;
    c.name = e["name"].get<std::string>();
    c.modelSha256 = e.value("model_sha256", "");
    c.generation = e.contains("generation") && e["generation"].is_number_integer() ? e["generation"].get<int64_t>() : 0;
    c.learnedAt = e.value("learned_at", "");
    out.push_back(std::move(c));
  }
  return out;
}

void recordLearned(const fs::path& casesDir, const std::vector<std::string>& names, const model::Model& learnedInto) {
  std::vector<LearnedCase> record = readLearnedRecord(casesDir);
  const std::set<std::string> now(names.begin(), names.end());
  std::erase_if(record, [&](const LearnedCase& c) { return now.count(c.name) > 0; });
  const std::string sha = learnedInto.weightsSha256(), at = utcNow();
  for (const auto& name : names) record.push_back({name, sha, learnedInto.generation, at});
  json cases = json::array();
  for (const auto& c : record) {
    cases.push_back({{"name", c.name}, {"model_sha256", c.modelSha256}, {"generation", c.generation}, {"learned_at", c.learnedAt}});
  }
  const json j{{"format", kLearnedFormat}, {"version", 1}, {"cases", cases}};
  common::writeFileAtomically(learnedRecordPath(casesDir), j.dump(2) + "\n");
}

std::optional<InteractionFigures> readInteractionFigures(const fs::path& casesDir, const std::string& name) {
  const fs::path path = interactionsPath(casesDir, name);
  if (!fs::exists(path)) return std::nullopt;
  const json j = readJsonObject(path);
  InteractionFigures f;
  if (j.contains("clicks")) {
    // A count, or the clicks themselves.
    if (j["clicks"].is_number_integer()) f.clicks = j["clicks"].get<int64_t>();
    if (j["clicks"].is_array()) f.clicks = static_cast<int64_t>(j["clicks"].size());
  }
  const auto number = [&](const char* field) -> std::optional<double> {
    if (!j.contains(field) || !j[field].is_number() || !std::isfinite(j[field].get<double>())) return std::nullopt;
    return j[field].get<double>();
  };
  f.seconds = number("seconds");
  f.diceBefore = number("dice_initial_to_accepted");
  return f;
}

ContinualResult learnContinually(model::Model& model, const std::vector<model::NamedCase>& fresh,
                                 const std::vector<model::NamedCase>& earlier, const ContinualOptions& options) {
  if (fresh.empty()) throw Error(ErrorCode::BadRequest, "continual learning: no new case to learn");
  if (options.replay < 0) throw Error(ErrorCode::BadRequest, "--replay: must be 0 or more, not " + std::to_string(options.replay));
  if (!(options.labelSmoothing >= 0.0 && options.labelSmoothing < 1.0)) {
    throw Error(ErrorCode::BadRequest, "--label-smoothing: must be in [0, 1), not " + std::to_string(options.labelSmoothing));
  }
  ContinualResult result;
  std::map<std::string, const model::NamedCase*> byName;
  ReplayBuffer buffer;
  for (const auto& c : earlier) {
    byName[c.name] = &c;
    buffer.add(c.name);
  }
  result.replayed = buffer.sample(static_cast<size_t>(options.replay), options.sampling, options.seed);

  std::vector<model::TrainingCase> cases;
  for (const auto& c : fresh) {
    nn::validateTrainingCases({c.data}, model.spec, model.preprocessing);
    result.learned.push_back(c.name);
    result.dice.push_back({c.name, diceOf(model, c.data), 0.0});
    cases.push_back(c.data);
  }
  for (const auto& name : result.replayed) cases.push_back(byName.at(name)->data);

  nn::TrainOptions train;
  train.epochs = options.epochs;
  train.learningRate = options.learningRate;
  train.labelSmoothing = options.labelSmoothing;
  train.batchSize = options.batchSize;
  train.seed = options.seed;
  train.augment = options.augment;
  train.onEpoch = [&](const nn::TrainProgress& p) {
    result.finalLoss = p.loss;
    if (options.onEpoch) options.onEpoch(p);
  };
  const int64_t inputGeneration = model.generation;
  const auto start = std::chrono::steady_clock::now();
  if (options.train) {
    options.train(model, cases, train);
  } else {
    nn::trainModel(model, cases, train);
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (options.advanceGeneration) {
    model.parentGeneration = inputGeneration;
    model.generation = inputGeneration + 1;
  }
  for (size_t i = 0; i < fresh.size(); ++i) result.dice[i].after = diceOf(model, fresh[i].data);
  return result;
}

CaseSelection selectCases(const fs::path& casesDir, const model::Model& model, const std::vector<std::string>& explicitNew) {
  if (!fs::is_directory(casesDir)) throw Error(ErrorCode::NotFound, casesDir.string() + ": no such case folder");
  std::vector<model::NamedCase> all = model::readCaseFolder(casesDir);
  for (auto& c : all) {
    validateAgainstModel(casesDir, c, model);
    c.data.weights = readProxyWeights(casesDir, c);
  }
  const std::vector<LearnedCase> record = readLearnedRecord(casesDir);
  std::map<std::string, size_t> learnedOrder;  // the latest position of each name
  for (size_t i = 0; i < record.size(); ++i) learnedOrder[record[i].name] = i;

  std::set<std::string> named(explicitNew.begin(), explicitNew.end());
  for (const auto& name : named) {
    const bool present = std::any_of(all.begin(), all.end(), [&](const model::NamedCase& c) { return c.name == name; });
    if (!present) throw Error(ErrorCode::NotFound, casesDir.string() + ": no case named '" + name + "' (--new)");
  }
  CaseSelection s;
  std::vector<std::pair<size_t, model::NamedCase>> recorded;
  for (auto& c : all) {
    const auto learned = learnedOrder.find(c.name);
    if (learned != learnedOrder.end()) ++s.recorded;
    const bool isNew = named.empty() ? learned == learnedOrder.end() : named.count(c.name) > 0;
    if (isNew) {
      s.fresh.push_back(std::move(c));
    } else if (learned == learnedOrder.end()) {
      s.earlier.push_back(std::move(c));  // predates the record: the oldest (sorted by name)
    } else {
      recorded.emplace_back(learned->second, std::move(c));
    }
  }
  std::sort(recorded.begin(), recorded.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [order, c] : recorded) s.earlier.push_back(std::move(c));
  return s;
}

}  // namespace tessera::interactive
