#include "tessera/client/SiteState.h"

#include <ctime>

#include "tessera/common/Error.h"
#include "tessera/client/ModelCache.h"
#include "tessera/common/AtomicFile.h"
#include "tessera/common/Error.h"

namespace tessera::client {

namespace fs = std::filesystem;

std::string utcNow() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

nlohmann::json toJson(const TrainedRecord& record) {
  nlohmann::json metrics = nlohmann::json::object();
  for (const auto& [name, value] : record.metrics) metrics[name] = value;
  return {{"base_generation", record.baseGeneration},
          {"samples", record.samples},
          {"metrics", metrics},
          {"cases", record.cases},
          {"trained_at", record.trainedAt},
          {"weights_sha256", record.weightsSha256},
          {"pushed", record.pushed}};
}

TrainedRecord trainedRecordFromJson(const nlohmann::json& j, const std::string& source) {
  TrainedRecord r;
  std::string field;
  try {
    field = "base_generation";
    r.baseGeneration = j.at(field).get<int64_t>();
    field = "samples";
    r.samples = j.at(field).get<double>();
    field = "metrics";
    for (const auto& [name, value] : j.at(field).items()) r.metrics[name] = value.get<double>();
    field = "cases";
    r.cases = j.value(field, 0);
    field = "trained_at";
    r.trainedAt = j.value(field, "");
    field = "weights_sha256";
    r.weightsSha256 = j.value(field, "");
    field = "pushed";
    r.pushed = j.value(field, nlohmann::json());
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::Config, source + ": field '" + field + "' is missing or of the wrong type: " + e.what());
  }
  return r;
}

SiteState::SiteState(const fs::path& home, const std::string& task)
    : folder_(home / "sites-state" / taskFolderName(task)) {}

std::optional<TrainedRecord> SiteState::readTrained() const {
  const fs::path path = trainedInfoPath();
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return std::nullopt;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(common::readFile(path));
  } catch (const std::exception& e) {
    throw Error(ErrorCode::Config, path.string() + ": unreadable (" + e.what() + "); train again to replace it");
  }
  return trainedRecordFromJson(j, path.string());
}

void SiteState::writeTrained(const model::Model& model, TrainedRecord record) {
  std::error_code ec;
  fs::create_directories(folder_, ec);
  if (ec) throw Error(ErrorCode::Config, folder_.string() + ": cannot create the site state folder: " + ec.message());
  // Without a record the model is never pushed, so a crash before the record is written cannot
  // pair the new weights with the old record's base generation.
  fs::remove(trainedInfoPath(), ec);
  record.weightsSha256 = model.weightsSha256();
  try {
    model::saveModel(model, trainedModelPath());
  } catch (const Error& e) {
    throw Error(ErrorCode::Config, e.what());
  }
  writeRecord(record);
}

void SiteState::writeRecord(const TrainedRecord& record) {
  try {
    common::writeFileAtomically(trainedInfoPath(), toJson(record).dump(2) + "\n");
  } catch (const Error& e) {
    throw Error(ErrorCode::Config, e.what());
  }
}

model::Model SiteState::loadTrained(const TrainedRecord& record) const {
  const fs::path path = trainedModelPath();
  model::Model model;
  try {
    model = model::loadModel(path);
  } catch (const Error& e) {
    throw Error(ErrorCode::Checksum, std::string(e.what()) + " (train again to replace it)");
  }
  if (!record.weightsSha256.empty() && model.weightsSha256() != record.weightsSha256) {
    throw Error(ErrorCode::Checksum, path.string() + ": weights do not match " + trainedInfoPath().string() +
                                      " (an interrupted train?); train again");
  }
  return model;
}

std::optional<model::Model> SiteState::previousTrained() const {
  std::error_code ec;
  if (!fs::is_regular_file(trainedModelPath(), ec)) return std::nullopt;
  try {
    return model::loadModel(trainedModelPath());
  } catch (const Error&) {
    return std::nullopt;
  }
}

}  // namespace tessera::client
