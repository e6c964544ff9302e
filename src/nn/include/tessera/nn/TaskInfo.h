#pragma once
// What a model segments: the IODeep selection keys (modality, anatomy, disease) and label names.

#include <map>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace tessera::nn {

struct TaskInfo {
  std::string name = "segmentation";
  std::string modality;  // DICOM modality code, e.g. "MR"
  std::string anatomy;   // e.g. "BRAIN"
  std::string disease;   // e.g. "none"
  std::map<int, std::string> labels{{0, "background"}, {1, "foreground"}};
};

nlohmann::json toJson(const TaskInfo& task);
TaskInfo taskInfoFromJson(const nlohmann::json& json);

}  // namespace tessera::nn
