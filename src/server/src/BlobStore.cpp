#include "tessera/server/BlobStore.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <system_error>
#include <vector>

#include "tessera/common/AtomicFile.h"
#include "tessera/common/Sha256.h"
#include "tessera/common/Error.h"

namespace tessera::server {

namespace fs = std::filesystem;

namespace {

fs::path shardOf(const fs::path& blobs, const std::string& sha) { return blobs / sha.substr(0, 2); }

// The shard directory's own entry in blobs/ must be durable too, or a crash right after the
// first blob of a shard could lose the whole directory together with the committed blob.
void ensureShard(const fs::path& blobs, const fs::path& shard) {
  std::error_code ec;
  const bool created = fs::create_directory(shard, ec);
  if (ec) throw Error(ErrorCode::Io, shard.string() + ": cannot create blob directory: " + ec.message());
  if (created) common::fsyncDirectory(blobs);
}

// Which file a verification was about: a rewrite, a restore or a replacement changes at least
// one of these (ctime cannot be set back by hand), so a cached verdict never outlives its file.
struct Stamp {
  uint64_t device = 0, inode = 0, size = 0;
  int64_t mtimeNs = 0, ctimeNs = 0;
  bool operator==(const Stamp& o) const {
    return device == o.device && inode == o.inode && size == o.size && mtimeNs == o.mtimeNs && ctimeNs == o.ctimeNs;
  }
};

Stamp stampOf(const struct stat& st) {
  Stamp s;
  s.device = static_cast<uint64_t>(st.st_dev);
  s.inode = static_cast<uint64_t>(st.st_ino);
  s.size = static_cast<uint64_t>(st.st_size);
  s.mtimeNs = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
  s.ctimeNs = int64_t{st.st_ctim.tv_sec} * 1000000000 + st.st_ctim.tv_nsec;
  return s;
}

// SHA-256 of an open file from its start, in 1 MiB pieces; throws Error(Io) naming `path`.
std::string hashDescriptor(int fd, const fs::path& path) {
  common::Sha256 h;
  std::vector<char> buffer(1 << 20);
  off_t offset = 0;
  for (;;) {
    const ssize_t n = ::pread(fd, buffer.data(), buffer.size(), offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(ErrorCode::Io, path.string() + ": cannot read blob: " + std::strerror(errno));
    }
    if (n == 0) break;
    h.update(std::string_view(buffer.data(), static_cast<size_t>(n)));
    offset += n;
  }
  return h.finishHex();
}

}  // namespace

struct BlobStore::Verification {
  std::mutex mutex;
  std::map<std::string, Stamp> verified;  // sha → the file that matched it
  struct Damage {
    Stamp stamp;
    std::string message;
  };
  std::map<std::string, Damage> damaged;  // sha → the file that did not, and why
};

bool isSha256Hex(const std::string& text) {
  return text.size() == 64 && text.find_first_not_of("0123456789abcdef") == std::string::npos;
}

BlobStore::BlobStore(fs::path root) : root_(std::move(root)), verification_(std::make_shared<Verification>()) {
  std::error_code ec;
  fs::create_directories(temporaryDirectory(), ec);
  if (ec) throw Error(ErrorCode::Io, temporaryDirectory().string() + ": cannot create: " + ec.message());
}

// ---- Writer ---------------------------------------------------------------------------------

BlobStore::Writer::Writer(fs::path blobsDirectory) : blobs_(std::move(blobsDirectory)) {
  try {
    file_ = std::make_unique<common::AtomicFileWriter>(blobs_ / "tmp");
  } catch (const Error& e) {
    throw Error(ErrorCode::Io, e.what());
  }
  hash_ = std::make_unique<common::Sha256>();
}

BlobStore::Writer::Writer(Writer&&) noexcept = default;
BlobStore::Writer& BlobStore::Writer::operator=(Writer&&) noexcept = default;
BlobStore::Writer::~Writer() = default;

void BlobStore::Writer::write(std::string_view bytes) {
  if (!file_) throw Error(ErrorCode::Io, "blob writer: write after commit");
  try {
    file_->write(bytes);
  } catch (const Error& e) {
    throw Error(ErrorCode::Io, e.what());
  }
  hash_->update(bytes);
  size_ += bytes.size();
}

std::string BlobStore::Writer::commit() {
  if (!file_) throw Error(ErrorCode::Io, "blob writer: committed twice");
  // Whatever happens below, this writer is finished; the temporary file goes with file_.
  const auto file = std::move(file_);
  const std::string sha = hash_->finishHex();
  const fs::path shard = shardOf(blobs_, sha);
  const fs::path target = shard / sha;
  try {
    ensureShard(blobs_, shard);
    std::error_code ec;
    // Same name means same content, so an intact existing copy is kept and the temporary file
    // is dropped. A copy of another size or content can only be damage: replace it with the
    // bytes just received.
    const auto existing = fs::file_size(target, ec);
    if (!ec && existing == size_) {
      bool intact = false;
      try {
        intact = common::sha256OfFile(target) == sha;
      } catch (const Error&) {
      }
      if (intact) return sha;
    }
    file->commit(target);
  } catch (const Error& e) {
    throw Error(ErrorCode::Io, e.what());
  }
  return sha;
}

BlobStore::Writer BlobStore::begin() { return Writer(root_ / "blobs"); }

// ---- whole blobs ----------------------------------------------------------------------------

std::string BlobStore::put(std::string_view bytes) {
  Writer writer = begin();
  writer.write(bytes);
  return writer.commit();
}

fs::path BlobStore::pathOf(const std::string& sha) const {
  if (!isSha256Hex(sha)) {
    throw Error(ErrorCode::BadRequest, "blob name '" + sha.substr(0, 80) + "' is not a SHA-256 (64 lower-case hex digits)");
  }
  return shardOf(root_ / "blobs", sha) / sha;
}

bool BlobStore::contains(const std::string& sha) const {
  std::error_code ec;
  return fs::is_regular_file(pathOf(sha), ec);
}

std::string BlobStore::read(const std::string& sha) const {
  // Verified through the descriptor it is then read from (hashed once per change of the file).
  const auto file = openVerified(sha);
  std::string bytes;
  std::vector<char> buffer(1 << 20);
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), file.get())) > 0) bytes.append(buffer.data(), n);
  if (std::ferror(file.get())) throw Error(ErrorCode::Io, pathOf(sha).string() + ": cannot read blob");
  return bytes;
}

std::shared_ptr<std::FILE> BlobStore::openVerified(const std::string& sha) const {
  const fs::path path = pathOf(sha);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) {
      {
        std::lock_guard lock(verification_->mutex);
        verification_->verified.erase(sha);
        verification_->damaged[sha] = {Stamp{}, "blob " + sha + " is missing: " + path.string()};
      }
      throw Error(ErrorCode::NotFound, "blob " + sha + " is not stored (" + path.string() + ")");
    }
    throw Error(ErrorCode::Io, path.string() + ": cannot open blob: " + std::strerror(err));
  }
  std::shared_ptr<std::FILE> file(::fdopen(fd, "rb"), [](std::FILE* f) {
    if (f) std::fclose(f);
  });
  if (!file) {
    const int err = errno;
    ::close(fd);
    throw Error(ErrorCode::Io, path.string() + ": cannot open blob: " + std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw Error(ErrorCode::Io, path.string() + ": cannot stat blob: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw Error(ErrorCode::Corrupt, "blob " + sha + " is damaged: " + path.string() + " is not a regular file");
  const Stamp stamp = stampOf(st);
  {
    std::lock_guard lock(verification_->mutex);
    if (auto it = verification_->verified.find(sha); it != verification_->verified.end() && it->second == stamp) return file;
  }
  const std::string actual = hashDescriptor(fd, path);
  std::lock_guard lock(verification_->mutex);
  if (actual != sha) {
    const std::string message = "blob " + sha + " is damaged: " + path.string() + " hashes to " + actual +
                                ", not to its name (bit rot, a bad disk or a hand edit; restore it from a backup)";
    verification_->verified.erase(sha);
    verification_->damaged[sha] = {stamp, message};
    throw Error(ErrorCode::Corrupt, message);
  }
  verification_->verified[sha] = stamp;
  verification_->damaged.erase(sha);
  return file;
}

void BlobStore::verify(const std::string& sha) const { openVerified(sha); }

std::vector<std::string> BlobStore::damagedBlobs() const {
  std::map<std::string, Verification::Damage> damaged;
  {
    std::lock_guard lock(verification_->mutex);
    damaged = verification_->damaged;
  }
  std::vector<std::string> out;
  for (const auto& [sha, damage] : damaged) {
    struct stat st {};
    const fs::path path = pathOf(sha);
    const bool exists = ::stat(path.c_str(), &st) == 0;
    // Unchanged since it was found damaged: still damaged, no need to hash it again.
    if (exists ? stampOf(st) == damage.stamp : damage.stamp == Stamp{}) {
      out.push_back(damage.message);
      continue;
    }
    try {
      verify(sha);  // changed: restored (clears the entry) or damaged anew (updates it)
    } catch (const Error& e) {
      out.push_back(e.what());
    }
  }
  return out;
}

std::vector<fs::path> BlobStore::removeTemporaryFiles() {
  const fs::path tmp = temporaryDirectory();
  std::error_code ec;
  fs::directory_iterator it(tmp, ec);
  if (ec) throw Error(ErrorCode::Io, tmp.string() + ": cannot list: " + ec.message());
  // Listed first, removed after: deleting entries under a live iterator is unspecified.
  std::vector<fs::path> leftovers;
  for (const auto& entry : it) leftovers.push_back(entry.path());
  for (const auto& path : leftovers) {
    fs::remove_all(path, ec);
    if (ec) throw Error(ErrorCode::Io, path.string() + ": cannot remove leftover: " + ec.message());
  }
  return leftovers;
}

std::vector<fs::path> BlobStore::removeUnreferenced(const std::set<std::string>& referenced, double minimumAgeSeconds) {
  const fs::path blobs = root_ / "blobs";
  const auto now = fs::file_time_type::clock::now();
  std::vector<fs::path> orphans;
  std::error_code ec;
  for (fs::directory_iterator shard(blobs, ec), end; !ec && shard != end; shard.increment(ec)) {
    const std::string prefix = shard->path().filename().string();
    // Only the store's own layout: ab/<sha starting with ab>. Anything else is left alone.
    if (prefix.size() != 2 || prefix.find_first_not_of("0123456789abcdef") != std::string::npos) continue;
    std::error_code inner;
    if (!shard->is_directory(inner)) continue;
    for (fs::directory_iterator blob(shard->path(), inner), last; !inner && blob != last; blob.increment(inner)) {
      const std::string name = blob->path().filename().string();
      if (!isSha256Hex(name) || name.compare(0, 2, prefix) != 0 || referenced.count(name)) continue;
      std::error_code e;
      if (!blob->is_regular_file(e)) continue;
      const auto written = fs::last_write_time(blob->path(), e);
      if (e || std::chrono::duration<double>(now - written).count() < minimumAgeSeconds) continue;
      orphans.push_back(blob->path());
    }
  }
  if (ec) throw Error(ErrorCode::Io, blobs.string() + ": cannot list: " + ec.message());
  std::vector<fs::path> removed;
  for (const auto& path : orphans) {
    if (fs::remove(path, ec)) removed.push_back(path);
    if (ec) throw Error(ErrorCode::Io, path.string() + ": cannot remove unreferenced blob: " + ec.message());
  }
  return removed;
}

}  // namespace tessera::server
