#pragma once
// Content-addressed files (weights of generations, uploaded updates) under DIR/blobs/ab/abcd…:
// the name is the SHA-256 of the content, so a blob is written once, never changed, and any
// corruption is detectable. Writes go to DIR/blobs/tmp first (same filesystem, so the final
// rename is atomic); a crash leaves at most a stray temporary file, never a half blob.

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

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

  // Every read of a blob's content goes through one of these two (or read()), so a damaged
  // blob is never served or merged. The file is hashed in 1 MiB pieces (memory stays flat)
  // unless the same file (device, inode, size, mtime, ctime) was verified before, so a blob is
  // hashed once per change, not once per download. Error("not_found") when absent,
  // Error("io") when unreadable, Error("corrupt") naming the blob and its path on mismatch;
  // a mismatch is remembered for damagedBlobs() until the file verifies again.
  void verify(const std::string& sha) const;
  // The open file, verified through the same descriptor it will be read from, so a file
  // replaced between the check and the read cannot slip through.
  std::shared_ptr<std::FILE> openVerified(const std::string& sha) const;
  // Blobs found damaged (or gone) since they were last verified, one line each. A damaged
  // blob whose file changed since (restored from a backup) is verified again first.
  std::vector<std::string> damagedBlobs() const;

  // Leftovers of writes interrupted by a crash. Call at startup, before anything writes.
  // Returns what was removed (paths), for the log.
  std::vector<std::filesystem::path> removeTemporaryFiles();
  // Blobs that no registry row names (`referenced`) and whose file is older than
  // `minimumAgeSeconds`: a failed insert after its blob was stored, a candidate whose publish
  // failed or was held back. Call at startup, before the merge loop runs (a candidate blob is
  // written before its transaction). Returns the removed blobs' paths.
  std::vector<std::filesystem::path> removeUnreferenced(const std::set<std::string>& referenced, double minimumAgeSeconds);

  struct Verification;  // what was verified and what was found damaged (BlobStore.cpp)

 private:
  std::filesystem::path root_;
  std::shared_ptr<Verification> verification_;
};

// True for 64 lower-case hex digits: the only blob names the store accepts.
bool isSha256Hex(const std::string& text);

}  // namespace tessera::server
