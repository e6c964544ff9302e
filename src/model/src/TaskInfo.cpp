#include "tessera/model/TaskInfo.h"

#include "tessera/image/Metrics.h"

#include <nlohmann/json.hpp>

#include "tessera/common/Error.h"

namespace tessera::model {

namespace {

nlohmann::json codeJson(const CodedConcept& code) {
  return {{"scheme", code.scheme}, {"value", code.value}, {"meaning", code.meaning}};
}

CodedConcept codeFromJson(const nlohmann::json& j, const char* field) {
  CodedConcept code;
  if (!j.is_object()) throw Error(ErrorCode::BadModel, std::string("task field '") + field + "': expected an object");
  code.scheme = j.value("scheme", "");
  code.value = j.value("value", "");
  code.meaning = j.value("meaning", "");
  if (code.value.empty() || code.scheme.empty()) {
    throw Error(ErrorCode::BadModel, std::string("task field '") + field + "': needs 'scheme' and 'value'");
  }
  return code;
}

}  // namespace

nlohmann::json toJson(const TaskInfo& task) {
  nlohmann::json labels = nlohmann::json::object();
  for (const auto& [value, name] : task.labels) labels[std::to_string(value)] = name;
  nlohmann::json j{{"name", task.name},
                   {"modality", task.modality},
                   {"anatomy", task.anatomy},
                   {"disease", task.disease},
                   {"labels", labels}};
  if (!task.anatomyCode.empty()) j["anatomy_code"] = codeJson(task.anatomyCode);
  if (!task.diseaseCode.empty()) j["disease_code"] = codeJson(task.diseaseCode);
  return j;
}

TaskInfo taskInfoFromJson(const nlohmann::json& j) {
  if (!j.is_object()) throw Error(ErrorCode::BadModel, "task: expected a JSON object");
  TaskInfo task;
  try {
    task.name = j.value("name", task.name);
    task.modality = j.value("modality", task.modality);
    task.anatomy = j.value("anatomy", task.anatomy);
    task.disease = j.value("disease", task.disease);
    if (j.contains("anatomy_code")) task.anatomyCode = codeFromJson(j.at("anatomy_code"), "anatomy_code");
    if (j.contains("disease_code")) task.diseaseCode = codeFromJson(j.at("disease_code"), "disease_code");
    if (j.contains("labels")) {
      task.labels.clear();
      for (const auto& [key, name] : j.at("labels").items()) {
        size_t used = 0;
        int value = -1;
        try {
          value = std::stoi(key, &used);
        } catch (const std::exception&) {
        }
        if (used != key.size() || value < 0 || value > 255) {
          throw Error(ErrorCode::BadModel, "task field 'labels': key '" + key + "' is not a label value 0..255");
        }
        task.labels[value] = name.get<std::string>();
      }
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::BadModel, std::string("task: wrong type of field: ") + e.what());
  }
  return task;
}

double foregroundDice(const image::Volume& prediction, const image::Volume& truth, const TaskInfo& task) {
  double sum = 0;
  int labels = 0;
  for (const auto& [label, name] : task.labels) {
    if (label < 1) continue;
    sum += image::diceScore(prediction, truth, label);
    ++labels;
  }
  return labels ? sum / labels : 0.0;
}

}  // namespace tessera::model
