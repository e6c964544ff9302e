#pragma once
// Failures of the server's storage. `code` is what the API reports: not_found, conflict,
// bad_request, corrupt, io.

#include <stdexcept>
#include <string>

namespace tessera::server {

class StorageError : public std::runtime_error {
 public:
  StorageError(std::string code, const std::string& message) : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

}  // namespace tessera::server
