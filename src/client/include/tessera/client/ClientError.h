#pragma once
// Why a site-side command failed. `code` tells callers (and tests) what kind of failure it was;
// the message is one line naming the URL, file or field and, for server refusals, the server's
// own reason. A std::runtime_error, so the CLI's catch-all prints it and exits with status 2.

#include <stdexcept>
#include <string>

namespace tessera::client {

class ClientError : public std::runtime_error {
 public:
  // code: "unreachable", "unauthorized", "forbidden", "rejected", "not_found", "server",
  // "checksum" or "config".
  ClientError(std::string code, const std::string& message) : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

}  // namespace tessera::client
