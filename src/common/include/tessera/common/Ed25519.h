#pragma once
// Ed25519 signatures (libsodium): a site's key signs its updates, the server's key signs every
// generation it publishes. Keys and signatures travel as lower-case hex; a secret key lives in a
// file only its owner may read.

#include <array>
#include <filesystem>
#include <string>
#include <string_view>

namespace tessera::common {

class SigningKey {
 public:
  static SigningKey generate();
  // Reads a file written by save(). Error("not_found") when absent, Error("config") when the
  // file is readable by group or others (a secret that others can read is no longer one) or is
  // not a key file.
  static SigningKey load(const std::filesystem::path& file);
  // Writes the secret key to `file` (mode 0600, atomically) and the public key to `file`.pub.
  void save(const std::filesystem::path& file) const;

  const std::string& publicKeyHex() const { return publicHex_; }
  // 128 hex digits.
  std::string sign(std::string_view message) const;

 private:
  SigningKey() = default;
  std::array<unsigned char, 32> seed_{};
  std::array<unsigned char, 64> secret_{};
  std::string publicHex_;
};

// A public key given as 64 hex digits or 44 characters of standard base64 (surrounding
// whitespace ignored), as lower-case hex. Error("bad_request", "<where>: …") otherwise.
std::string normalizePublicKey(std::string_view text, const std::string& where);
// `fileOrText` names a file holding a public key (a `.pub` written by SigningKey::save) or is
// the key itself.
std::string readPublicKey(const std::string& fileOrText, const std::string& where);
// False for a signature that does not verify and for malformed keys or signatures.
bool verifySignature(std::string_view publicKeyHex, std::string_view message, std::string_view signatureHex);
// `bytes` random bytes from the OS, as hex (nonces).
std::string randomHex(size_t bytes);

}  // namespace tessera::common
