#include "tessera/common/Ed25519.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <sodium.h>

#include "tessera/common/Error.h"

namespace tessera::common {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kSecretTag = "tessera-ed25519-secret-key ";

void initSodium() {
  static const int ready = sodium_init();
  if (ready < 0) throw Error(ErrorCode::Internal, "libsodium could not be initialised");
}

std::string toHex(const unsigned char* data, size_t length) {
  std::string out(length * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), data, length);
  out.pop_back();
  return out;
}

// Exactly `length` bytes from hex digits (no separators); false otherwise.
bool fromHex(std::string_view hex, unsigned char* out, size_t length) {
  if (hex.size() != length * 2) return false;
  size_t written = 0;
  const char* end = nullptr;
  return sodium_hex2bin(out, length, hex.data(), hex.size(), nullptr, &written, &end) == 0 && written == length &&
         end == hex.data() + hex.size();
}

std::string_view trimmed(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return text;
}

// Created with mode 0600 from the start (never world-readable for a moment), synced, renamed.
void writePrivateFile(const fs::path& file, const std::string& text) {
  const fs::path temporary = file.string() + ".tmp-" + std::to_string(::getpid());
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw Error(ErrorCode::Io, temporary.string() + ": cannot create: " + std::strerror(errno));
  ::fchmod(fd, 0600);  // in case it existed with other bits
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!written || ::rename(temporary.c_str(), file.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(temporary.c_str());
    throw Error(ErrorCode::Io, file.string() + ": cannot write the secret key: " + reason);
  }
}

}  // namespace

SigningKey SigningKey::generate() {
  initSodium();
  SigningKey key;
  randombytes_buf(key.seed_.data(), key.seed_.size());
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  crypto_sign_seed_keypair(pk, key.secret_.data(), key.seed_.data());
  key.publicHex_ = toHex(pk, sizeof pk);
  return key;
}

SigningKey SigningKey::load(const fs::path& file) {
  initSodium();
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    throw Error(ErrorCode::NotFound, file.string() + ": no secret key file (" + std::strerror(errno) + ")");
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw Error(ErrorCode::Config, file.string() + ": secret key is readable by group or others (mode " + mode +
                                       "); run chmod 600 on it, and make a new key if others may have read it");
  }
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  const std::string content = text.str();
  const std::string_view body = trimmed(content);
  SigningKey key;
  if (!in || body.substr(0, kSecretTag.size()) != kSecretTag ||
      !fromHex(trimmed(body.substr(kSecretTag.size())), key.seed_.data(), key.seed_.size())) {
    throw Error(ErrorCode::Config, file.string() + ": not a Tessera Ed25519 secret key file");
  }
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  crypto_sign_seed_keypair(pk, key.secret_.data(), key.seed_.data());
  key.publicHex_ = toHex(pk, sizeof pk);
  return key;
}

void SigningKey::save(const fs::path& file) const {
  std::error_code ec;
  if (file.has_parent_path()) fs::create_directories(file.parent_path(), ec);
  writePrivateFile(file, std::string(kSecretTag) + toHex(seed_.data(), seed_.size()) + "\n");
  const fs::path pub = file.string() + ".pub";
  std::ofstream out(pub, std::ios::trunc);
  out << publicHex_ << "\n";
  if (!out.flush()) throw Error(ErrorCode::Io, pub.string() + ": cannot write the public key");
}

std::string SigningKey::sign(std::string_view message) const {
  unsigned char sig[crypto_sign_BYTES];
  crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(message.data()), message.size(), secret_.data());
  return toHex(sig, sizeof sig);
}

std::string normalizePublicKey(std::string_view text, const std::string& where) {
  initSodium();
  const std::string_view key = trimmed(text);
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  if (key.size() == 64) {
    if (fromHex(key, pk, sizeof pk)) return toHex(pk, sizeof pk);
  } else if (key.size() == 44) {
    size_t written = 0;
    if (sodium_base642bin(pk, sizeof pk, key.data(), key.size(), nullptr, &written, nullptr,
                          sodium_base64_VARIANT_ORIGINAL) == 0 &&
        written == sizeof pk) {
      return toHex(pk, sizeof pk);
    }
  }
  throw Error(ErrorCode::BadRequest, where + ": '" + std::string(key.substr(0, 80)) +
                                         "' is not an Ed25519 public key (64 hex digits or 44 characters of base64)");
}

std::string readPublicKey(const std::string& fileOrText, const std::string& where) {
  std::error_code ec;
  if (fs::is_regular_file(fileOrText, ec)) {
    std::ifstream in(fileOrText);
    std::stringstream text;
    text << in.rdbuf();
    return normalizePublicKey(text.str(), where + " (file " + fileOrText + ")");
  }
  return normalizePublicKey(fileOrText, where);
}

bool verifySignature(std::string_view publicKeyHex, std::string_view message, std::string_view signatureHex) {
  initSodium();
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  unsigned char sig[crypto_sign_BYTES];
  if (!fromHex(publicKeyHex, pk, sizeof pk) || !fromHex(signatureHex, sig, sizeof sig)) return false;
  return crypto_sign_verify_detached(sig, reinterpret_cast<const unsigned char*>(message.data()), message.size(), pk) == 0;
}

std::string randomHex(size_t bytes) {
  initSodium();
  std::string buffer(bytes, '\0');
  randombytes_buf(buffer.data(), buffer.size());
  return toHex(reinterpret_cast<const unsigned char*>(buffer.data()), buffer.size());
}

}  // namespace tessera::common
