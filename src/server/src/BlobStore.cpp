#include "tessera/server/BlobStore.h"

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

}  // namespace

bool isSha256Hex(const std::string& text) {
  return text.size() == 64 && text.find_first_not_of("0123456789abcdef") == std::string::npos;
}

BlobStore::BlobStore(fs::path root) : root_(std::move(root)) {
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
    // Same name means same content, so an existing copy of the right size is kept and the
    // temporary file is dropped. A copy of another size can only be damage: replace it.
    const auto existing = fs::file_size(target, ec);
    if (!ec && existing == size_) return sha;
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
  const fs::path path = pathOf(sha);
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw Error(ErrorCode::NotFound, "blob " + sha + " is not stored (" + path.string() + ")");
  std::string bytes;
  try {
    bytes = common::readFile(path);
  } catch (const Error& e) {
    throw Error(ErrorCode::Io, e.what());
  }
  if (common::sha256Hex(bytes) != sha) {
    throw Error(ErrorCode::Corrupt, path.string() + ": content does not match its SHA-256 name");
  }
  return bytes;
}

void BlobStore::removeTemporaryFiles() {
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
}

}  // namespace tessera::server
