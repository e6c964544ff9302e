#include "AtomicWrite.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <utility>

#include "tessera/plot/LinePlot.h"

namespace tessera::plot {

namespace fs = std::filesystem;

namespace {

// `step` is a view so that passing a literal allocates nothing before `err` (errno) is read.
[[noreturn]] void fail(const fs::path& path, std::string_view step, int err) {
  throw PlotError(path.string() + ": " + std::string(step) + ": " + std::strerror(err));
}

// Removes the temporary file unless the rename consumed it, whichever way we leave.
class TemporaryFile {
 public:
  static constexpr int kNeverOpened = -2;
  explicit TemporaryFile(fs::path p) : path(std::move(p)) {}
  ~TemporaryFile() {
    if (fd >= 0) ::close(fd);
    if (fd != kNeverOpened && !renamed) ::unlink(path.c_str());
  }
  TemporaryFile(const TemporaryFile&) = delete;
  TemporaryFile& operator=(const TemporaryFile&) = delete;

  const fs::path path;
  int fd = kNeverOpened;  // -1 once closed
  bool renamed = false;
};

fs::path temporaryNameFor(const fs::path& path) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  const fs::path directory = path.has_parent_path() ? path.parent_path() : fs::path(".");
  // Hidden and unique per process and call, so concurrent writers never share a temporary file.
  std::string name = ".";  // appended, not "." + string: GCC 12 raises a false -Wrestrict on that
  name += path.filename().string() + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(rng());
  return directory / name;
}

}  // namespace

void writeFileAtomically(const fs::path& path, std::string_view bytes) {
  if (path.filename().empty()) throw PlotError(path.string() + ": not a file name");
  TemporaryFile tmp(temporaryNameFor(path));
  const int fd = ::open(tmp.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int err = errno;
    fail(path, "cannot create temporary file " + tmp.path.string(), err);
  }
  tmp.fd = fd;
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(tmp.fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail(path, "write failed", n < 0 ? errno : EIO);
    done += static_cast<size_t>(n);
  }
  if (::fsync(tmp.fd) != 0) fail(path, "flushing to disk failed", errno);
  const int closed = ::close(tmp.fd);
  tmp.fd = -1;
  if (closed != 0) fail(path, "closing failed", errno);
  if (::rename(tmp.path.c_str(), path.c_str()) != 0) fail(path, "cannot rename into place", errno);
  tmp.renamed = true;

  // Without this the rename itself may not survive a power cut.
  const fs::path directory = path.has_parent_path() ? path.parent_path() : fs::path(".");
  const int dirFd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirFd < 0) {
    const int err = errno;
    fail(path, "cannot open directory " + directory.string() + " to sync it", err);
  }
  const int synced = ::fsync(dirFd);
  const int syncErr = errno;
  ::close(dirFd);
  if (synced != 0) fail(path, "syncing directory " + directory.string() + " failed", syncErr);
}

}  // namespace tessera::plot
