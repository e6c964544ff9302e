#include "tessera/client/ModelCache.h"

#include <algorithm>
#include <cctype>
#include <regex>

#include "tessera/common/Error.h"
#include "tessera/common/AtomicFile.h"
#include "tessera/common/Error.h"
#include "tessera/model/TaskName.h"

namespace tessera::client {

namespace fs = std::filesystem;

std::string taskFolderName(const std::string& task) {
  if (task.empty()) throw Error(ErrorCode::Config, "no task: pass --task NAME or set \"task\" in the client config");
  // The one task-name rule makes every valid name a safe single folder name as it is.
  model::requireValidTaskName(task, "task");
  return task;
}

ModelCache::ModelCache(fs::path home) : root_(std::move(home) / "models") {}

fs::path ModelCache::folder(const std::string& task) const { return root_ / taskFolderName(task); }

fs::path ModelCache::pathFor(const std::string& task, int64_t generation) const {
  return folder(task) / ("generation-" + std::to_string(generation) + ".tsm");
}

bool ModelCache::contains(const std::string& task, int64_t generation) const {
  std::error_code ec;
  return fs::is_regular_file(pathFor(task, generation), ec);
}

fs::path ModelCache::store(const std::string& task, int64_t generation, const std::string& tsmBytes) {
  const fs::path path = pathFor(task, generation);
  try {
    const model::Model model = model::decodeModel(tsmBytes, "generation " + std::to_string(generation) + " of " + task);
    if (model.generation != generation) {
      throw Error(ErrorCode::Checksum, "the server's file for " + task + " generation " + std::to_string(generation) +
                                        " says it is generation " + std::to_string(model.generation));
    }
  } catch (const Error& e) {
    throw Error(ErrorCode::Checksum, std::string("downloaded model is not usable: ") + e.what());
  }
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) throw Error(ErrorCode::Config, path.parent_path().string() + ": cannot create the model cache folder: " + ec.message());
  try {
    common::writeFileAtomically(path, tsmBytes);
  } catch (const Error& e) {
    throw Error(ErrorCode::Config, e.what());
  }
  return path;
}

model::Model ModelCache::load(const std::string& task, int64_t generation) const {
  const fs::path path = pathFor(task, generation);
  if (!contains(task, generation)) {
    throw Error(ErrorCode::NotFound, path.string() + ": generation " + std::to_string(generation) + " of " + task +
                                       " is not in the local cache; run `tessera client pull`");
  }
  std::string bytes;
  try {
    bytes = common::readFile(path);
  } catch (const std::exception& e) {
    throw Error(ErrorCode::Config, path.string() + ": cannot read the cached model: " + e.what());
  }
  try {
    return model::decodeModel(bytes, path.string());
  } catch (const Error& e) {
    throw Error(ErrorCode::Checksum, std::string(e.what()) + " (the cached model is damaged: delete " + path.string() +
                                      " and run `tessera client pull` again)");
  }
}

std::vector<int64_t> ModelCache::generations(const std::string& task) const {
  static const std::regex name(R"(generation-(\d{1,18})\.tsm)");
  std::vector<int64_t> found;
  std::error_code ec;
  const fs::path dir = folder(task);
  if (!fs::is_directory(dir, ec)) return found;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::smatch m;
    const std::string file = entry.path().filename().string();
    if (entry.is_regular_file(ec) && std::regex_match(file, m, name)) found.push_back(std::stoll(m[1].str()));
  }
  std::sort(found.begin(), found.end());
  return found;
}

std::optional<int64_t> ModelCache::latestCached(const std::string& task) const {
  const auto all = generations(task);
  if (all.empty()) return std::nullopt;
  return all.back();
}

void ModelCache::storeSummary(const std::string& task, const nlohmann::json& summary) {
  const fs::path path = folder(task) / "summary.json";
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  try {
    common::writeFileAtomically(path, summary.dump(2) + "\n");
  } catch (const Error& e) {
    throw Error(ErrorCode::Config, e.what());
  }
}

std::optional<nlohmann::json> ModelCache::summary(const std::string& task) const {
  const fs::path path = folder(task) / "summary.json";
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return std::nullopt;
  try {
    return nlohmann::json::parse(common::readFile(path));
  } catch (const std::exception&) {
    return std::nullopt;  // only a hint for offline use; the server is asked when reachable
  }
}

}  // namespace tessera::client
