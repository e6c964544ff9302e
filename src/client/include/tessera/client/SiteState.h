#pragma once
// What a site has trained and not yet (or already) pushed, per task:
//   home/sites-state/<task>/trained.tsm   the fine-tuned model
//   home/sites-state/<task>/trained.json  {base_generation, samples, metrics{final_loss, seconds},
//                                          cases, trained_at, weights_sha256, pushed}
// trained.json is written last and names the weights' hash, so a crash between the two writes
// leaves either no record or a record that is detected as not matching the model.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "tessera/model/Model.h"

namespace tessera::client {

struct TrainedRecord {
  int64_t baseGeneration = 0;
  double samples = 0;
  std::map<std::string, double> metrics;  // final_loss, seconds
  int cases = 0;
  std::string trainedAt;  // ISO 8601, UTC
  std::string weightsSha256;
  nlohmann::json pushed;  // null until pushed; then {"update": id, "at": time, "server": url}
};

nlohmann::json toJson(const TrainedRecord& record);
// Throws Error("config") naming `source` and the field.
TrainedRecord trainedRecordFromJson(const nlohmann::json& json, const std::string& source);

class SiteState {
 public:
  SiteState(const std::filesystem::path& home, const std::string& task);

  const std::filesystem::path& folder() const { return folder_; }
  std::filesystem::path trainedModelPath() const { return folder_ / "trained.tsm"; }
  std::filesystem::path trainedInfoPath() const { return folder_ / "trained.json"; }

  std::optional<TrainedRecord> readTrained() const;
  // Replaces the previous trained model and its record (the record is removed first).
  void writeTrained(const model::Model& model, TrainedRecord record);
  void writeRecord(const TrainedRecord& record);
  // The trained model, checked against the record's hash. Error("checksum") when damaged.
  model::Model loadTrained(const TrainedRecord& record) const;
  // The previous trained model if there is a readable one (FedBN keeps its statistics).
  std::optional<model::Model> previousTrained() const;

 private:
  std::filesystem::path folder_;
};

// "2024-05-01T12:00:00Z"
std::string utcNow();

}  // namespace tessera::client
