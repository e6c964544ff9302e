#include "tessera/interactive/ContinualLearning.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <cmath>
#include <ctime>
#include <map>
#include <optional>
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
  // Read, modify, write under a lock: a `learn` and a `client train` finishing at the same time
  // must not drop each other's cases from the record.
  const fs::path lockPath = casesDir / ".learned.lock";
  const int lock = ::open(lockPath.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock < 0) throw Error(ErrorCode::Io, lockPath.string() + ": cannot open: " + std::strerror(errno));
  struct Unlock {
    int fd;
    ~Unlock() { ::close(fd); }  // closing releases the flock
  } unlock{lock};
  if (::flock(lock, LOCK_EX) != 0) throw Error(ErrorCode::Io, lockPath.string() + ": cannot lock: " + std::strerror(errno));
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
  for (const auto& c : cases) {
    result.samples += model.spec.dims == 2 ? static_cast<double>(c.image.geometry.size[model.spec.axis]) : 1.0;
  }

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

namespace {

// "case1.nii.gz" → "case1" for the endings model::readCaseFolder takes in the Tessera layout.
std::string tesseraCaseName(const fs::path& file) {
  const std::string name = file.filename().string();
  for (const std::string ext : {".nii.gz", ".nii", ".mha", ".nrrd"}) {
    if (name.size() > ext.size() && name.compare(name.size() - ext.size(), ext.size(), ext) == 0) {
      return name.substr(0, name.size() - ext.size());
    }
  }
  return {};
}

// Name → image file of a Tessera-layout folder, every image with its label map; nullopt for the
// other layouts (nnU-Net, Decathlon: fixed datasets, read whole).
std::optional<std::map<std::string, fs::path>> listTesseraCases(const fs::path& casesDir) {
  if (model::detectDatasetLayout(casesDir) != model::DatasetLayout::Tessera) return std::nullopt;
  std::map<std::string, fs::path> found;
  for (const auto& entry : fs::directory_iterator(casesDir / "images")) {
    if (!entry.is_regular_file()) continue;
    const std::string name = tesseraCaseName(entry.path());
    if (name.empty()) continue;
    const fs::path labels = casesDir / "labels" / entry.path().filename();
    if (!fs::exists(labels)) {
      throw Error(ErrorCode::BadDataset, entry.path().string() + ": has no label map " + labels.string());
    }
    found[name] = entry.path();
  }
  return found;
}

model::NamedCase readChecked(const fs::path& casesDir, const model::Model& model, model::NamedCase c) {
  validateAgainstModel(casesDir, c, model);
  c.data.weights = readProxyWeights(casesDir, c);
  return c;
}

}  // namespace

std::vector<model::NamedCase> readCases(const fs::path& casesDir, const model::Model& model,
                                        const std::vector<std::string>& names) {
  std::vector<model::NamedCase> out;
  if (names.empty()) return out;
  if (const auto listed = listTesseraCases(casesDir)) {
    for (const auto& name : names) {
      const auto it = listed->find(name);
      if (it == listed->end()) throw Error(ErrorCode::NotFound, casesDir.string() + ": no case named '" + name + "'");
      model::NamedCase c;
      c.name = name;
      c.data.image = image::readImage(it->second);
      c.data.labels = image::readImage(casesDir / "labels" / it->second.filename());
      out.push_back(readChecked(casesDir, model, std::move(c)));
    }
    return out;
  }
  std::vector<model::NamedCase> all = model::readCaseFolder(casesDir);
  for (const auto& name : names) {
    const auto it = std::find_if(all.begin(), all.end(), [&](const model::NamedCase& c) { return c.name == name; });
    if (it == all.end()) throw Error(ErrorCode::NotFound, casesDir.string() + ": no case named '" + name + "'");
    out.push_back(readChecked(casesDir, model, *it));
  }
  return out;
}

CaseSelection selectCases(const fs::path& casesDir, const model::Model& model, const std::vector<std::string>& explicitNew) {
  if (!fs::is_directory(casesDir)) throw Error(ErrorCode::NotFound, casesDir.string() + ": no such case folder");
  std::vector<std::string> names;  // sorted
  if (const auto listed = listTesseraCases(casesDir)) {
    for (const auto& [name, file] : *listed) names.push_back(name);
  } else {
    for (const auto& c : model::readCaseFolder(casesDir)) names.push_back(c.name);
    std::sort(names.begin(), names.end());
  }
  const std::vector<LearnedCase> record = readLearnedRecord(casesDir);
  std::map<std::string, size_t> learnedOrder;  // the latest position of each name
  for (size_t i = 0; i < record.size(); ++i) learnedOrder[record[i].name] = i;

  const std::set<std::string> named(explicitNew.begin(), explicitNew.end());
  for (const auto& name : named) {
    if (!std::binary_search(names.begin(), names.end(), name)) {
      throw Error(ErrorCode::NotFound, casesDir.string() + ": no case named '" + name + "' (--new)");
    }
  }
  CaseSelection s;
  s.casesDir = casesDir;
  std::vector<std::string> fresh;
  std::vector<std::pair<size_t, std::string>> recorded;
  for (const auto& name : names) {
    const auto learned = learnedOrder.find(name);
    if (learned != learnedOrder.end()) ++s.recorded;
    const bool isNew = named.empty() ? learned == learnedOrder.end() : named.count(name) > 0;
    if (isNew) {
      fresh.push_back(name);
    } else if (learned == learnedOrder.end()) {
      s.earlier.push_back(name);  // predates the record: the oldest (in name order)
    } else {
      recorded.emplace_back(learned->second, name);
    }
  }
  std::sort(recorded.begin(), recorded.end());
  for (const auto& [order, name] : recorded) s.earlier.push_back(name);
  s.fresh = readCases(casesDir, model, fresh);
  return s;
}

ContinualResult learnFromCaseFolder(model::Model& model, const CaseSelection& selection, const ContinualOptions& options) {
  if (options.replay < 0) throw Error(ErrorCode::BadRequest, "--replay: must be 0 or more, not " + std::to_string(options.replay));
  const std::vector<std::string> replayed =
      ReplayBuffer(selection.earlier).sample(static_cast<size_t>(options.replay), options.sampling, options.seed);
  // The sample is the whole pool handed on, so learnContinually keeps exactly these.
  return learnContinually(model, selection.fresh, readCases(selection.casesDir, model, replayed), options);
}

}  // namespace tessera::interactive
