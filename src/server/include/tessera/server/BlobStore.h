#pragma once
// Content-addressed files (weights of generations, uploaded updates) under DIR/blobs/ab/abcd…:
// the name is the SHA-256 of the content, so a blob is written once, never changed, and any
// corruption is detectable.

#include <filesystem>
#include <string>
#include <string_view>

namespace tessera::server {

class BlobStore {
 public:
  explicit BlobStore(std::filesystem::path root);  // creates root/blobs and root/blobs/tmp

  // Atomic (temp in blobs/tmp, fsync, rename, directory fsync); returns the SHA-256.
  std::string put(std::string_view bytes);
  // Throws StorageError("bad_request") unless `sha` is 64 lower-case hex digits.
  std::filesystem::path pathOf(const std::string& sha) const;
  std::filesystem::path temporaryDirectory() const { return root_ / "blobs" / "tmp"; }
  bool contains(const std::string& sha) const;
  // Verifies the content against its name: StorageError("corrupt") on mismatch.
  std::string read(const std::string& sha) const;
  // Leftovers of writes interrupted by a crash.
  void removeTemporaryFiles();

 private:
  std::filesystem::path root_;
};

}  // namespace tessera::server
