#pragma once
// Crash-safe file replacement: whoever reads `path` sees either the old content or the whole new
// content, never a mix, even if the process or the machine dies mid-write (write a temporary file
// in the same directory, fsync it, rename it over the target, fsync the directory).

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>

namespace tessera::common {

class FileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws FileError naming the path and the system's reason.
void writeFileAtomically(const std::filesystem::path& path, std::string_view bytes);

// Makes a completed rename or create in `directory` durable.
void fsyncDirectory(const std::filesystem::path& directory);

std::string readFile(const std::filesystem::path& path);

// A temporary file in the target's directory, written piece by piece and then committed under
// its final name; destroying it uncommitted removes it. Used to stream large blobs to disk
// without holding them in memory.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::filesystem::path& directory);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(std::string_view bytes);
  uint64_t bytesWritten() const { return written_; }
  const std::filesystem::path& temporaryPath() const { return tmp_; }
  // fsync, rename to `path` (replacing it), fsync the directory.
  void commit(const std::filesystem::path& path);

 private:
  std::filesystem::path tmp_;
  int fd_ = -1;
  uint64_t written_ = 0;
};

}  // namespace tessera::common
