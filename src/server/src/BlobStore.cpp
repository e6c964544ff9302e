#include "tessera/server/BlobStore.h"

#include "tessera/common/AtomicFile.h"
#include "tessera/common/Sha256.h"
#include "tessera/server/StorageError.h"

namespace tessera::server {

namespace fs = std::filesystem;

BlobStore::BlobStore(fs::path root) : root_(std::move(root)) {
  std::error_code ec;
  fs::create_directories(temporaryDirectory(), ec);
  if (ec) throw StorageError("io", temporaryDirectory().string() + ": cannot create: " + ec.message());
}

fs::path BlobStore::pathOf(const std::string& sha) const {
  const bool valid = sha.size() == 64 && sha.find_first_not_of("0123456789abcdef") == std::string::npos;
  if (!valid) throw StorageError("bad_request", "'" + sha + "' is not a SHA-256 (64 lower-case hex digits)");
  return root_ / "blobs" / sha.substr(0, 2) / sha;
}

bool BlobStore::contains(const std::string& sha) const {
  std::error_code ec;
  return fs::exists(pathOf(sha), ec);
}

std::string BlobStore::put(std::string_view bytes) {
  const std::string sha = common::sha256Hex(bytes);
  const fs::path path = pathOf(sha);
  if (contains(sha)) return sha;
  try {
    fs::create_directories(path.parent_path());
    common::AtomicFileWriter writer(temporaryDirectory());
    writer.write(bytes);
    writer.commit(path);
  } catch (const std::exception& e) {
    throw StorageError("io", e.what());
  }
  return sha;
}

std::string BlobStore::read(const std::string& sha) const {
  const fs::path path = pathOf(sha);
  std::string bytes;
  try {
    bytes = common::readFile(path);
  } catch (const common::FileError& e) {
    throw StorageError("not_found", std::string("blob ") + e.what());
  }
  if (common::sha256Hex(bytes) != sha) throw StorageError("corrupt", path.string() + ": content does not match its SHA-256");
  return bytes;
}

void BlobStore::removeTemporaryFiles() {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(temporaryDirectory(), ec)) fs::remove(entry.path(), ec);
}

}  // namespace tessera::server
