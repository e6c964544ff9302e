#pragma once
// Content-addressed files (weights of generations, uploaded updates) under DIR/blobs/ab/abcd…:
// the name is the SHA-256 of the content, so a blob is written once, never changed, and any
// corruption is detectable. Writes go to DIR/blobs/tmp first (same filesystem, so the final
// rename is atomic); a crash leaves at most a stray temporary file, never a half blob.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace tessera::common {
class AtomicFileWriter;
class Sha256;
}  // namespace tessera::common

namespace tessera::server {

class BlobStore {
 public:
  explicit BlobStore(std::filesystem::path root);  // creates root/blobs and root/blobs/tmp

  // Streams a blob of unknown size to disk while hashing it; nothing is visible under blobs/
  // until commit(). Destroying an uncommitted writer removes its temporary file.
  class Writer {
   public:
    Writer(Writer&&) noexcept;
    Writer& operator=(Writer&&) noexcept;
    ~Writer();

    void write(std::string_view bytes);
    uint64_t size() const { return size_; }
    // fsync, rename to blobs/ab/<sha> (an intact existing copy wins and the temporary file is
    // dropped), fsync the directory. Returns the SHA-256 in lower-case hex.
    std::string commit();

   private:
    friend class BlobStore;
    explicit Writer(std::filesystem::path blobsDirectory);
    std::filesystem::path blobs_;  // a copy, so a writer never dangles on its store
    std::unique_ptr<common::AtomicFileWriter> file_;
    std::unique_ptr<common::Sha256> hash_;
    uint64_t size_ = 0;
  };

  Writer begin();
  // Atomic, deduplicated; returns the SHA-256.
  std::string put(std::string_view bytes);
  // Throws Error("bad_request") unless `sha` is 64 lower-case hex digits, so a name
  // taken from a request can never point outside blobs/.
  std::filesystem::path pathOf(const std::string& sha) const;
  std::filesystem::path temporaryDirectory() const { return root_ / "blobs" / "tmp"; }
  bool contains(const std::string& sha) const;
  // Verifies the content against its name: Error("not_found") when absent,
  // Error("corrupt") on mismatch.
  std::string read(const std::string& sha) const;
  // Leftovers of writes interrupted by a crash. Call at startup, before anything writes.
  void removeTemporaryFiles();

 private:
  std::filesystem::path root_;
};

// True for 64 lower-case hex digits: the only blob names the store accepts.
bool isSha256Hex(const std::string& text);

}  // namespace tessera::server
