#pragma once
// Crash-safe file replacement: whoever reads `path` sees either the old content or the whole new
// content, never a mix, even if the process or the machine dies mid-write (write a temporary file
// in the same directory, fsync it, rename it over the target, fsync the directory).

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "tessera/common/Error.h"

namespace tessera::common {

// Throws Error(Io) naming the path and the system's reason.
void writeFileAtomically(const std::filesystem::path& path, std::string_view bytes);

// Makes a completed rename or create in `directory` durable.
void fsyncDirectory(const std::filesystem::path& directory);

// The same guarantee for libraries that write a file by name (ITK, Cairo): `write` produces the
// temporary file it is given (its name ends in `suffix`), which is then synced and renamed.
void writeFileAtomicallyWith(const std::filesystem::path& path, const std::string& suffix,
                              const std::function<void(const std::filesystem::path& temporary)>& write);

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
