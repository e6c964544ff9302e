#pragma once
// The generations a site has pulled: home/models/<task>/generation-<g>.tsm. Files are written
// atomically and verified every time they are read, so a half-written or bit-rotted file is
// reported instead of being fine-tuned and pushed.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tessera/model/Model.h"

namespace tessera::client {

// A task name as one folder name: the name itself, which the task-name rule
// (tessera/model/TaskName.h) makes a safe single path component. Throws Error("config") for an
// empty name (no task set) and Error("bad_request") for a name that breaks the rule.
std::string taskFolderName(const std::string& task);

class ModelCache {
 public:
  explicit ModelCache(std::filesystem::path home);

  std::filesystem::path folder(const std::string& task) const;
  std::filesystem::path pathFor(const std::string& task, int64_t generation) const;
  bool contains(const std::string& task, int64_t generation) const;

  // Checks that the bytes decode to a model (weights hash included) before writing them.
  // Throws Error("checksum") naming the generation otherwise.
  std::filesystem::path store(const std::string& task, int64_t generation, const std::string& tsmBytes);
  // Throws Error("not_found") when absent, Error("checksum") naming the file when
  // it no longer decodes or its weights no longer match their recorded SHA-256.
  model::Model load(const std::string& task, int64_t generation) const;

  // Generations present, oldest first.
  std::vector<int64_t> generations(const std::string& task) const;
  std::optional<int64_t> latestCached(const std::string& task) const;

  // The server's ModelSummary saved at pull time, so that offline commands know the strategy.
  void storeSummary(const std::string& task, const nlohmann::json& summary);
  std::optional<nlohmann::json> summary(const std::string& task) const;

 private:
  std::filesystem::path root_;
};

}  // namespace tessera::client
