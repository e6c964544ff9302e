#include "tessera/server/AdminTasks.h"

#include "tessera/common/AtomicFile.h"
#include "tessera/federation/MergePolicy.h"
#include "tessera/model/CaseFolder.h"
#include "tessera/model/NetworkSpec.h"
#include "tessera/model/Preprocessing.h"
#include "tessera/model/TaskInfo.h"
#include "tessera/server/BlobStore.h"
#include "tessera/server/Registry.h"
#include "tessera/common/Error.h"

namespace tessera::server {

namespace fs = std::filesystem;

nlohmann::json seedModel(Registry& registry, BlobStore& blobs, const model::Model& model, const std::string& strategy) {
  const auto policy = federation::defaultPolicyFor(federation::strategyFromString(strategy));
  if (model.task.name.empty()) throw std::invalid_argument("the model has no task name");
  const std::string weights = common::encodeWeights(model.weights);
  GenerationRecord first;
  first.generation = model.generation;
  first.parent = model.parentGeneration;
  first.weightsSha256 = blobs.put(weights);
  first.weightsBytes = static_cast<int64_t>(weights.size());
  first.parameters = common::parameterCount(model.weights);
  first.strategy = "seed";
  first.validation = nullptr;
  const nlohmann::json header{{"spec", model::toJson(model.spec)},
                              {"preprocessing", model::toJson(model.preprocessing)},
                              {"task", model::toJson(model.task)}};
  const auto record = registry.addModel(model.task.name, model.task.modality, model.task.anatomy, model.task.disease,
                                        header, federation::toJson(policy), first);
  return {{"task", record.task}, {"generation", first.generation}, {"parameters", first.parameters},
          {"strategy", federation::toString(policy.strategy)}};
}

fs::path validationDirectory(const fs::path& dataDir, const std::string& task) {
  return dataDir / "validation" / task;
}

int setValidationCases(const fs::path& dataDir, const std::string& task, const fs::path& casesDir) {
  const auto cases = model::readCaseFolder(casesDir);  // proves every pair is readable before replacing
  if (cases.empty()) throw std::invalid_argument(casesDir.string() + ": holds no cases");
  const fs::path target = validationDirectory(dataDir, task);
  const fs::path staging = target.parent_path() / (".staging-" + task);
  fs::remove_all(staging);
  for (const auto& c : cases) model::writeCase(staging, c.name, c.data);
  fs::remove_all(target);
  fs::rename(staging, target);
  common::fsyncDirectory(target.parent_path());
  return static_cast<int>(cases.size());
}

nlohmann::json updatePolicy(Registry& registry, const std::string& task, const nlohmann::json& patch) {
  const auto model = registry.model(task);
  if (!model) throw Error(ErrorCode::NotFound, "no model for task '" + task + "'");
  const auto base = federation::policyFromJson(model->policy);
  const auto updated = federation::policyFromJson(patch, base);
  registry.setPolicy(model->id, federation::toJson(updated));
  return federation::toJson(updated);
}

model::Model loadGeneration(const Registry& registry, const BlobStore& blobs, const std::string& task, int64_t generation) {
  const auto model = registry.model(task);
  if (!model) throw Error(ErrorCode::NotFound, "no model for task '" + task + "'");
  const auto g = registry.generation(model->id, generation);
  if (!g) throw Error(ErrorCode::NotFound, "model '" + task + "' has no generation " + std::to_string(generation));
  model::Model m;
  m.spec = model::networkSpecFromJson(model->header.at("spec"));
  m.preprocessing = model::preprocessingFromJson(model->header.at("preprocessing"));
  m.task = model::taskInfoFromJson(model->header.at("task"));
  m.generation = g->generation;
  m.parentGeneration = g->parent;
  m.weights = common::decodeWeights(blobs.read(g->weightsSha256), "generation " + std::to_string(generation));
  return m;
}

}  // namespace tessera::server
