#pragma once
// What a model segments: the IODeep selection keys (modality, anatomy, disease) and label names.

#include <map>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "tessera/image/Volume.h"

namespace tessera::model {

struct TaskInfo {
  std::string name = "segmentation";
  std::string modality;  // DICOM modality code, e.g. "MR"
  std::string anatomy;   // e.g. "BRAIN"
  std::string disease;   // e.g. "none"
  std::map<int, std::string> labels{{0, "background"}, {1, "foreground"}};
};

nlohmann::json toJson(const TaskInfo& task);
TaskInfo taskInfoFromJson(const nlohmann::json& json);

// Dice averaged over the task's foreground labels (≥ 1).
double foregroundDice(const image::Volume& prediction, const image::Volume& truth, const TaskInfo& task);

}  // namespace tessera::model
