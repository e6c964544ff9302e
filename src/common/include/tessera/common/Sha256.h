#pragma once
// SHA-256 over data that arrives in pieces (uploads streamed to disk, files read in chunks).

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace tessera::common {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(std::string_view bytes);
  // Lower-case hex digest; the hasher cannot be updated afterwards.
  std::string finishHex();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

std::string sha256Hex(std::string_view bytes);
std::string sha256OfFile(const std::filesystem::path& path);

}  // namespace tessera::common
