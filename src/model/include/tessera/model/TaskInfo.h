#pragma once
// What a model segments: the IODeep selection keys (modality, anatomy, disease) and label names.

#include <map>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "tessera/image/Volume.h"

namespace tessera::model {

// A coded concept as DICOM writes it (Code Value, Coding Scheme Designator, Code Meaning), e.g.
// SCT 12738006 "Brain". Empty when the task names its anatomy or disease in words only.
struct CodedConcept {
  std::string scheme;  // "SCT", "ICD10", "DCM", …
  std::string value;
  std::string meaning;

  bool empty() const { return value.empty(); }
  bool operator==(const CodedConcept&) const = default;
};

struct TaskInfo {
  std::string name = "segmentation";
  std::string modality;  // DICOM modality code, e.g. "MR"
  std::string anatomy;   // e.g. "BRAIN"
  std::string disease;   // e.g. "none"
  // Optional codes for anatomy and disease; written to JSON only when set, so models without
  // them keep their exact bytes.
  CodedConcept anatomyCode;
  CodedConcept diseaseCode;
  std::map<int, std::string> labels{{0, "background"}, {1, "foreground"}};
};

nlohmann::json toJson(const TaskInfo& task);
TaskInfo taskInfoFromJson(const nlohmann::json& json);

// Dice averaged over the task's foreground labels (≥ 1).
double foregroundDice(const image::Volume& prediction, const image::Volume& truth, const TaskInfo& task);

}  // namespace tessera::model
