#include "TokenHash.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <random>

#include "tessera/common/Sha256.h"

namespace tessera::server {

namespace {

constexpr size_t kTokenBytes = 32;

bool readUrandom(std::array<unsigned char, kTokenBytes>& out) {
  const int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::read(fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return done == out.size();
}

}  // namespace

std::string newSiteToken() {
  std::array<unsigned char, kTokenBytes> bytes{};
  if (!readUrandom(bytes)) {
    // Containers without /dev: libstdc++'s random_device draws from getrandom()/RDRAND, not
    // from a seeded PRNG, so it is still unpredictable.
    std::random_device device;
    for (auto& b : bytes) b = static_cast<unsigned char>(device());
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token = "tsk_";
  for (const unsigned char b : bytes) {
    token += kHex[b >> 4];
    token += kHex[b & 15];
  }
  return token;
}

std::string tokenHash(std::string_view token) { return common::sha256Hex(token); }

bool isValidSiteName(const std::string& name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  });
}

}  // namespace tessera::server
