#include "tessera/server/AdminTasks.h"

#include <stdio.h>  // renameat2, RENAME_EXCHANGE
#include <fcntl.h>  // AT_FDCWD
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "tessera/common/AtomicFile.h"
#include "tessera/federation/MergePolicy.h"
#include "tessera/model/CaseFolder.h"
#include "tessera/model/NetworkSpec.h"
#include "tessera/model/Preprocessing.h"
#include "tessera/model/TaskInfo.h"
#include "tessera/model/TaskName.h"
#include "tessera/server/BlobStore.h"
#include "tessera/server/HighWater.h"
#include "tessera/server/Registry.h"
#include "tessera/common/Error.h"

namespace tessera::server {

namespace fs = std::filesystem;

nlohmann::json seedModel(Registry& registry, BlobStore& blobs, const model::Model& model, const std::string& strategy) {
  const auto policy = federation::defaultPolicyFor(federation::strategyFromString(strategy));
  model::requireValidTaskName(model.task.name, "the model's task");
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
  // Recorded durably in the data folder (the blob store's root: DATA/blobs/tmp → DATA).
  raiseHighWater(blobs.temporaryDirectory().parent_path().parent_path(), HighWaterMark{0, {{record.task, first.generation}}});
  return {{"task", record.task}, {"generation", first.generation}, {"parameters", first.parameters},
          {"strategy", federation::toString(policy.strategy)}};
}

fs::path validationDirectory(const fs::path& dataDir, const std::string& task) {
  model::requireValidTaskName(task, "task");  // so the folder is always one child of DATA/validation
  return dataDir / "validation" / task;
}

namespace {

// Puts `staging` (a complete new set) in place of `target` in one step: readers (the merge
// loop) see the old set or the new one, never none or a mix. Returns the path now holding the
// old set (to be removed by the caller), or an empty path when there was none.
fs::path swapIntoPlace(const fs::path& staging, const fs::path& target) {
  std::error_code ec;
  if (!fs::exists(target, ec)) {
    if (::rename(staging.c_str(), target.c_str()) != 0) {
      throw Error(ErrorCode::Io, target.string() + ": cannot move the new validation set into place: " + std::strerror(errno));
    }
    return {};
  }
  if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) == 0) return staging;
  if (errno != EINVAL && errno != ENOSYS) {
    throw Error(ErrorCode::Io, target.string() + ": cannot swap in the new validation set: " + std::strerror(errno));
  }
  // A filesystem without RENAME_EXCHANGE: two renames, with the old set kept until the new one
  // is in place (a crash in between leaves it under the .old- name, and the task without a set).
  const fs::path old = staging.parent_path() / (staging.filename().string() + ".old");
  if (::rename(target.c_str(), old.c_str()) != 0 || ::rename(staging.c_str(), target.c_str()) != 0) {
    throw Error(ErrorCode::Io, target.string() + ": cannot swap in the new validation set: " + std::strerror(errno));
  }
  return old;
}

}  // namespace

int setValidationCases(const fs::path& dataDir, const std::string& task, const fs::path& casesDir) {
  // The name first: it becomes a path. Then the task must exist, before anything is read or
  // written: an unknown task is an error, never a folder created or removed.
  const fs::path target = validationDirectory(dataDir, task);
  std::error_code ec;
  if (!fs::is_regular_file(dataDir / "registry.sqlite3", ec)) {
    throw Error(ErrorCode::NotFound, dataDir.string() + ": holds no registry.sqlite3 (not a server data folder)");
  }
  {
    const Registry registry(dataDir);
    if (!registry.model(task)) {
      throw Error(ErrorCode::NotFound, "no model for task '" + task + "' in " + (dataDir / "registry.sqlite3").string() +
                                           " (seed it first with `tessera server admin seed`)");
    }
  }
  const auto cases = model::readCaseFolder(casesDir);  // proves every pair is readable before replacing
  if (cases.empty()) throw Error(ErrorCode::BadDataset, casesDir.string() + ": holds no cases");

  // The new set is written next to the old one (same filesystem, hidden name no task can have)
  // and swapped in whole; only that staging folder, made by this call, is ever removed.
  const fs::path root = target.parent_path();
  fs::create_directories(root);
  static std::atomic<int> counter{0};
  const fs::path staging =
      root / (".staging-" + task + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  if (!fs::create_directory(staging, ec) || ec) {
    throw Error(ErrorCode::Io, staging.string() + ": cannot create the staging folder" + (ec ? ": " + ec.message() : ""));
  }
  fs::path previous;
  try {
    for (const auto& c : cases) model::writeCase(staging, c.name, c.data);
    common::fsyncDirectory(staging / "images");
    common::fsyncDirectory(staging / "labels");
    common::fsyncDirectory(staging);
    previous = swapIntoPlace(staging, target);
    common::fsyncDirectory(root);
  } catch (...) {
    fs::remove_all(staging, ec);
    throw;
  }
  if (!previous.empty()) fs::remove_all(previous, ec);  // the old set, under the staging name
  return static_cast<int>(cases.size());
}

nlohmann::json updatePolicy(Registry& registry, const std::string& task, const nlohmann::json& patch) {
  model::requireValidTaskName(task, "task");
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
