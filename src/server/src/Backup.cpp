// backupDataFolder (tessera/server/Backup.h) and Registry::backupTo.
#include "tessera/server/Backup.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <system_error>
#include <vector>

#include "Database.h"
#include "tessera/common/AtomicFile.h"
#include "tessera/common/Error.h"
#include "tessera/common/Sha256.h"
#include "tessera/server/BlobStore.h"
#include "tessera/server/HighWater.h"
#include "tessera/server/Registry.h"
#include "tessera/server/ServerKey.h"

namespace tessera::server {

namespace fs = std::filesystem;

void Registry::backupTo(const fs::path& file) const {
  std::lock_guard lock(mutex_);
  db_->backupTo(file);
}

namespace {

class Fd {
 public:
  Fd(const fs::path& path, int flags, mode_t mode = 0) : fd_(::open(path.c_str(), flags | O_CLOEXEC, mode)) {
    if (fd_ < 0) throw Error(ErrorCode::Io, path.string() + ": cannot open: " + std::strerror(errno));
  }
  ~Fd() { ::close(fd_); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Copies `from` to a new file `to`, fsync'd; returns its SHA-256 (hex).
std::string copyFile(const fs::path& from, const fs::path& to) {
  Fd in(from, O_RDONLY);
  Fd out(to, O_WRONLY | O_CREAT | O_EXCL, 0644);
  common::Sha256 hash;
  std::vector<char> buffer(1 << 20);
  for (;;) {
    const ssize_t n = ::read(in.get(), buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(ErrorCode::Io, from.string() + ": read failed: " + std::strerror(errno));
    if (n == 0) break;
    hash.update(std::string_view(buffer.data(), static_cast<size_t>(n)));
    for (ssize_t done = 0; done < n;) {
      const ssize_t w = ::write(out.get(), buffer.data() + done, static_cast<size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) throw Error(ErrorCode::Io, to.string() + ": write failed: " + std::strerror(errno));
      done += w;
    }
  }
  if (::fsync(out.get()) != 0) throw Error(ErrorCode::Io, to.string() + ": flushing to disk failed: " + std::strerror(errno));
  return hash.finishHex();
}

void fsyncFile(const fs::path& file) {
  Fd fd(file, O_RDONLY);
  if (::fsync(fd.get()) != 0) throw Error(ErrorCode::Io, file.string() + ": flushing to disk failed: " + std::strerror(errno));
}

void makeDirectory(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(ErrorCode::Io, dir.string() + ": cannot create: " + ec.message());
}

struct BlobRef {
  std::string sha;
  std::string what;   // "generation 3 of task 'brain'", "queued update 12"
  bool required;      // the registry cannot work without it
};

// Every blob the (backed-up) registry names, read straight from its file.
std::vector<BlobRef> referencedBlobs(const fs::path& registryFile, BackupReport& report) {
  db::Connection c(registryFile);
  std::vector<BlobRef> out;
  {
    db::Statement q(c, "listing generation weights",
                    "SELECT g.weights_sha256, m.task, g.generation FROM generations g JOIN models m ON m.id = g.model_id "
                    "ORDER BY m.id, g.generation");
    while (q.step()) {
      out.push_back({q.text(0), "generation " + q.text(2) + " of task '" + q.text(1) + "'", true});
      ++report.generations;
    }
  }
  {
    db::Statement q(c, "listing update files", "SELECT blob_sha256, id, status FROM updates ORDER BY id");
    while (q.step()) {
      out.push_back({q.text(0), q.text(2) + " update " + q.text(1), q.text(2) == "queued"});
      ++report.updates;
    }
  }
  db::Statement q(c, "counting models", "SELECT count(*) FROM models");
  q.step();
  report.models = q.integer(0);
  return out;
}

void copyBlobs(const fs::path& dataDir, const fs::path& staging, const std::vector<BlobRef>& blobs, BackupReport& report) {
  std::set<std::string> done;
  std::set<fs::path> shards;
  for (const auto& ref : blobs) {
    if (!isSha256Hex(ref.sha)) {
      report.problems.push_back(ref.what + ": blob name '" + ref.sha.substr(0, 80) + "' is not a SHA-256");
      continue;
    }
    if (!done.insert(ref.sha).second) continue;
    const fs::path rel = fs::path("blobs") / ref.sha.substr(0, 2) / ref.sha;
    const fs::path from = dataDir / rel;
    const fs::path to = staging / rel;
    std::error_code ec;
    const auto size = fs::file_size(from, ec);
    if (ec) {
      // An update already merged or discarded is history; its file is kept when present.
      if (ref.required) report.problems.push_back(ref.what + ": blob " + ref.sha + " is missing in " + dataDir.string());
      continue;
    }
    if (shards.insert(to.parent_path()).second) makeDirectory(to.parent_path());
    if (::link(from.c_str(), to.c_str()) == 0) {
      ++report.blobsLinked;
    } else if (errno == EXDEV || errno == EPERM || errno == EMLINK || errno == ENOTSUP) {
      if (copyFile(from, to) != ref.sha) {
        fs::remove(to, ec);
        report.problems.push_back(ref.what + ": blob " + from.string() + " is damaged (its content does not match its name)");
        continue;
      }
      ++report.blobsCopied;
    } else {
      throw Error(ErrorCode::Io, to.string() + ": cannot link to " + from.string() + ": " + std::strerror(errno));
    }
    report.blobBytes += size;
  }
  for (const auto& shard : shards) common::fsyncDirectory(shard);
  common::fsyncDirectory(staging / "blobs");
}

// DATA/validation/<task>/… for every task-named folder (staging leftovers start with '.').
void copyValidationSets(const fs::path& dataDir, const fs::path& staging, BackupReport& report) {
  const fs::path root = dataDir / "validation";
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return;
  std::vector<fs::path> dirs;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    const fs::path rel = fs::relative(entry.path(), root);
    if (rel.begin()->string().front() == '.') continue;
    const fs::path to = staging / "validation" / rel;
    if (entry.is_directory()) {
      makeDirectory(to);
      dirs.push_back(to);
    } else if (entry.is_regular_file()) {
      makeDirectory(to.parent_path());
      copyFile(entry.path(), to);
      ++report.validationFiles;
    }
  }
  for (const auto& d : dirs) common::fsyncDirectory(d);
  if (fs::is_directory(staging / "validation", ec)) common::fsyncDirectory(staging / "validation");
}

}  // namespace

BackupReport backupDataFolder(const fs::path& dataDir, const fs::path& outPath) {
  std::error_code ec;
  if (!fs::is_regular_file(dataDir / "registry.sqlite3", ec)) {
    throw Error(ErrorCode::NotFound, dataDir.string() + ": holds no registry.sqlite3 (not a server data folder)");
  }
  const fs::path out = fs::absolute(outPath).lexically_normal();
  if (out.filename().empty()) throw Error(ErrorCode::BadRequest, outPath.string() + ": not a folder name to create");
  if (fs::exists(fs::symlink_status(out, ec))) {
    if (!fs::is_directory(out, ec) || !fs::is_empty(out, ec)) {
      throw Error(ErrorCode::Conflict, out.string() + ": exists and is not an empty folder; a backup goes into a new folder");
    }
  }
  makeDirectory(out.parent_path());
  // Built beside PATH (same filesystem: the final rename is atomic) and renamed at the end.
  std::string stagingName = out.filename().string();
  stagingName.insert(0, 1, '.');  // hidden, and never a task or blob name
  stagingName += ".backup-" + std::to_string(::getpid());
  const fs::path staging = out.parent_path() / stagingName;
  if (!fs::create_directory(staging, ec) || ec) {
    throw Error(ErrorCode::Io, staging.string() + ": cannot create the temporary backup folder" +
                                   (ec ? ": " + ec.message() : std::string(" (it exists; remove it)")));
  }
  BackupReport report;
  report.out = out;
  try {
    {
      const Registry source(dataDir);
      source.backupTo(staging / "registry.sqlite3");
    }
    makeDirectory(staging / "blobs" / "tmp");
    copyBlobs(dataDir, staging, referencedBlobs(staging / "registry.sqlite3", report), report);
    copyValidationSets(dataDir, staging, report);
    // The key every generation is signed with: a restored server without it would make a new
    // one, and sites that pinned the old one would refuse every generation it serves.
    if (fs::exists(serverKeyFile(dataDir), ec)) common::SigningKey::load(serverKeyFile(dataDir)).save(serverKeyFile(staging));
    {
      const Registry copy(staging);  // also proves the copy opens
      raiseHighWater(staging, copy.highWater());
    }
    fsyncFile(staging / "registry.sqlite3");
    common::fsyncDirectory(staging);
    if (::rename(staging.c_str(), out.c_str()) != 0) {
      throw Error(ErrorCode::Io, out.string() + ": cannot move the finished backup into place: " + std::strerror(errno));
    }
    common::fsyncDirectory(out.parent_path());
  } catch (...) {
    fs::remove_all(staging, ec);  // the folder this call created, never anything given to it
    throw;
  }
  return report;
}

}  // namespace tessera::server
