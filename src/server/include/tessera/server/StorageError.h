#pragma once
// Failures of the server's storage. `code` is what the HTTP layer reports to clients, so it is
// a short machine-readable word: not_found, conflict, bad_request, corrupt, io.

#include <stdexcept>
#include <string>
#include <utility>

namespace tessera::server {

class StorageError : public std::runtime_error {
 public:
  StorageError(std::string code, std::string message)
      : std::runtime_error(std::move(message)), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

}  // namespace tessera::server
