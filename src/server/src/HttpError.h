#pragma once
// An error a route answers with: status plus the JSON body {"error": {"code", "message"}}.

#include <stdexcept>
#include <string>

namespace tessera::server {

class HttpError : public std::runtime_error {
 public:
  HttpError(int status, std::string code, const std::string& message)
      : std::runtime_error(message), status_(status), code_(std::move(code)) {}
  int status() const { return status_; }
  const std::string& code() const { return code_; }

 private:
  int status_;
  std::string code_;
};

}  // namespace tessera::server
