#pragma once
// Why an update was refused. `code` is the machine-readable reason the server returns.

#include <stdexcept>
#include <string>

namespace tessera::federation {

class UpdateError : public std::runtime_error {
 public:
  UpdateError(std::string code, const std::string& message) : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

}  // namespace tessera::federation
