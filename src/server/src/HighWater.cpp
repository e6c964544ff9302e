// The registry's durable high-water mark (tessera/server/HighWater.h).
#include "tessera/server/HighWater.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include <nlohmann/json.hpp>

#include "Database.h"
#include "tessera/common/AtomicFile.h"
#include "tessera/common/Error.h"
#include "tessera/server/Registry.h"

namespace tessera::server {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// flock on DATA/highwater.lock for the lifetime of the object. A separate lock file, because
// highwater.json itself is replaced by rename (a lock on the old inode would protect nothing).
class FileLock {
 public:
  explicit FileLock(const fs::path& file) {
    fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error(ErrorCode::Io, file.string() + ": cannot open the lock file: " + std::strerror(errno));
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd_);
      throw Error(ErrorCode::Io, file.string() + ": cannot lock: " + std::strerror(err));
    }
  }
  ~FileLock() { ::close(fd_); }  // closing releases the lock
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

std::string toText(const HighWaterMark& mark) {
  json generations = json::object();
  for (const auto& [task, g] : mark.generations) generations[task] = g;
  return json{{"update_id", mark.updateId}, {"generations", generations}}.dump(2) + "\n";
}

HighWaterMark merged(const HighWaterMark& a, const HighWaterMark& b) {
  HighWaterMark out = a;
  out.updateId = std::max(a.updateId, b.updateId);
  for (const auto& [task, g] : b.generations) {
    auto [it, inserted] = out.generations.emplace(task, g);
    if (!inserted) it->second = std::max(it->second, g);
  }
  return out;
}

std::string behind(const fs::path& dataDir) {
  return (dataDir / "registry.sqlite3").string() + " is behind " + highWaterFile(dataDir).string() + ": ";
}

constexpr const char* kAdvice =
    " (was registry.sqlite3-wal deleted, or an older registry.sqlite3 put in place? restore from `tessera server admin "
    "backup`)";

}  // namespace

HighWaterMark Registry::highWater() const {
  std::lock_guard lock(mutex_);
  return db_->snapshot([&] {
    HighWaterMark mark;
    {
      db::Statement q(*db_, "finding the highest update id", "SELECT coalesce(max(id), 0) FROM updates");
      q.step();
      mark.updateId = q.integer(0);
    }
    db::Statement q(*db_, "finding each model's latest generation",
                    "SELECT m.task, max(g.generation) FROM models m JOIN generations g ON g.model_id = m.id GROUP BY m.id");
    while (q.step()) mark.generations[q.text(0)] = q.integer(1);
    return mark;
  });
}

fs::path highWaterFile(const fs::path& dataDir) { return dataDir / "highwater.json"; }

std::optional<HighWaterMark> readHighWater(const fs::path& dataDir) {
  const fs::path file = highWaterFile(dataDir);
  std::error_code ec;
  if (!fs::exists(file, ec)) return std::nullopt;
  std::string text;
  try {
    text = common::readFile(file);
  } catch (const Error& e) {
    throw Error(ErrorCode::Io, e.what());
  }
  const auto bad = [&](const std::string& why) {
    return Error(ErrorCode::Corrupt, file.string() + ": " + why +
                                         " (it records what the registry published and accepted; it is written by the "
                                         "server only)");
  };
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw bad("not valid JSON");
  if (!j.is_object()) throw bad("not a JSON object");
  HighWaterMark mark;
  if (j.contains("update_id")) {
    if (!j["update_id"].is_number_integer() || j["update_id"].get<int64_t>() < 0) throw bad("'update_id' is not an integer >= 0");
    mark.updateId = j["update_id"].get<int64_t>();
  }
  if (j.contains("generations")) {
    if (!j["generations"].is_object()) throw bad("'generations' is not an object");
    for (const auto& [task, g] : j["generations"].items()) {
      if (!g.is_number_integer() || g.get<int64_t>() < 0) throw bad("generation of task '" + task + "' is not an integer >= 0");
      mark.generations[task] = g.get<int64_t>();
    }
  }
  return mark;
}

void raiseHighWater(const fs::path& dataDir, const HighWaterMark& mark) {
  FileLock lock(dataDir / "highwater.lock");
  const auto current = readHighWater(dataDir);
  const HighWaterMark next = current ? merged(*current, mark) : mark;
  if (current && next == *current) return;  // nothing new: no write, no fsync
  common::writeFileAtomically(highWaterFile(dataDir), toText(next));
}

std::vector<std::string> highWaterProblems(const Registry& registry, const fs::path& dataDir) {
  const auto recorded = readHighWater(dataDir);
  if (!recorded) return {};
  const HighWaterMark actual = registry.highWater();
  std::vector<std::string> out;
  for (const auto& [task, g] : recorded->generations) {
    const auto it = actual.generations.find(task);
    if (it == actual.generations.end()) {
      out.push_back(behind(dataDir) + "generation " + std::to_string(g) + " of task '" + task +
                    "' was published but the registry has no model for that task" + kAdvice);
    } else if (it->second < g) {
      out.push_back(behind(dataDir) + "generation " + std::to_string(g) + " of task '" + task +
                    "' was published but the registry knows only " + std::to_string(it->second) + kAdvice);
    }
  }
  if (actual.updateId < recorded->updateId) {
    out.push_back(behind(dataDir) + "update " + std::to_string(recorded->updateId) +
                  " was accepted but the registry knows only updates up to " + std::to_string(actual.updateId) + kAdvice);
  }
  return out;
}

void enforceHighWater(const Registry& registry, const fs::path& dataDir) {
  const auto problems = highWaterProblems(registry, dataDir);
  if (!problems.empty()) throw Error(ErrorCode::Corrupt, problems.front());
  raiseHighWater(dataDir, registry.highWater());
}

}  // namespace tessera::server
