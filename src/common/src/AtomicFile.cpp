#include "tessera/common/AtomicFile.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>

namespace tessera::common {

namespace fs = std::filesystem;

namespace {

std::string systemError() { return std::strerror(errno); }

// Starts with a dot so directory listings and globbing skip half-written files; `suffix` keeps
// an extension for libraries that choose the format (and compression) from the name.
fs::path temporaryName(const fs::path& directory, const std::string& stem = "", const std::string& suffix = "") {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return directory / ("." + stem + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(rng()) + suffix);
}

void fsyncFile(const fs::path& file, const fs::path& target) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(ErrorCode::Io, target.string() + ": cannot open " + file.string() + " to sync it: " + systemError());
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) throw Error(ErrorCode::Io, target.string() + ": flushing to disk failed: " + std::strerror(err));
}

}  // namespace

void fsyncDirectory(const fs::path& directory) {
  const fs::path dir = directory.empty() ? fs::path(".") : directory;
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw Error(ErrorCode::Io, dir.string() + ": cannot open directory to sync it: " + systemError());
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) throw Error(ErrorCode::Io, dir.string() + ": syncing the directory failed: " + std::strerror(err));
}

AtomicFileWriter::AtomicFileWriter(const fs::path& directory) {
  tmp_ = temporaryName(directory.empty() ? fs::path(".") : directory);
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(ErrorCode::Io, tmp_.string() + ": cannot create: " + systemError());
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

void AtomicFileWriter::write(std::string_view bytes) {
  if (fd_ < 0) throw Error(ErrorCode::Io, tmp_.string() + ": write after commit");
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error(ErrorCode::Io, tmp_.string() + ": write failed: " + systemError());
    done += static_cast<size_t>(n);
  }
  written_ += bytes.size();
}

void AtomicFileWriter::commit(const fs::path& path) {
  if (fd_ < 0) throw Error(ErrorCode::Io, tmp_.string() + ": committed twice");
  if (::fsync(fd_) != 0) throw Error(ErrorCode::Io, path.string() + ": flushing to disk failed: " + systemError());
  const int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) {
    ::unlink(tmp_.c_str());
    throw Error(ErrorCode::Io, path.string() + ": closing failed: " + systemError());
  }
  if (::rename(tmp_.c_str(), path.c_str()) != 0) {
    const std::string why = systemError();
    ::unlink(tmp_.c_str());
    throw Error(ErrorCode::Io, path.string() + ": cannot rename into place: " + why);
  }
  fsyncDirectory(path.parent_path());
}

void writeFileAtomically(const fs::path& path, std::string_view bytes) {
  AtomicFileWriter writer(path.parent_path());
  writer.write(bytes);
  writer.commit(path);
}

void writeFileAtomicallyWith(const fs::path& path, const std::string& suffix,
                              const std::function<void(const fs::path& temporary)>& write) {
  const fs::path directory = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  const fs::path tmp = temporaryName(directory, path.filename().string(), suffix);
  try {
    write(tmp);
    fsyncFile(tmp, path);
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) throw Error(ErrorCode::Io, path.string() + ": cannot rename into place: " + ec.message());
    fsyncDirectory(directory);
  } catch (...) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw;
  }
}

std::string readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::Io, path.string() + ": cannot open: " + systemError());
  std::string bytes;
  in.seekg(0, std::ios::end);
  const auto size = in.tellg();
  if (size < 0) throw Error(ErrorCode::Io, path.string() + ": cannot determine size");
  bytes.resize(static_cast<size_t>(size));
  in.seekg(0);
  in.read(bytes.data(), size);
  if (!in) throw Error(ErrorCode::Io, path.string() + ": read failed");
  return bytes;
}

}  // namespace tessera::common
