#pragma once
// The one error type of Tessera. Every failure that reaches a user carries a code from one
// table, which says both what an HTTP client gets (status) and what a shell script gets (exit
// status), and a one-line message naming the file, field or value at fault.

#include <stdexcept>
#include <string>
#include <string_view>

namespace tessera {

enum class ErrorCode {
  BadRequest,     // a flag, field or request body that is malformed or out of range
  Config,         // settings missing or contradictory (client configuration, command line)
  Unauthorized,   // no, unknown or revoked credentials
  Forbidden,      // valid credentials without the needed role
  NotFound,       // a file, task, generation, update or route that does not exist
  Conflict,       // the request clashes with stored state (duplicate name, wrong order)
  TooLarge,       // over a configured size limit
  RateLimited,    // too many requests or too much in flight from one site; retry later
  BadImage,       // an image file that cannot be read or makes no sense
  BadModel,       // a model file or network spec that cannot be read or makes no sense
  BadDataset,     // a case folder or dataset that is not one of the known layouts
  BadUpdate,      // an update file that cannot be read
  ShapeMismatch,  // weights whose tensor names or shapes differ from the model's
  NonFinite,      // NaN or Inf where numbers are needed
  NormTooLarge,   // an update whose size is out of proportion to the model
  UnknownBase,    // an update built on a generation the server does not know
  StaleBase,      // an update built on a generation too old to merge
  TaskMismatch,   // an update or model for another task
  Rejected,       // the server refused a request for a reason it named
  PrivacyBudgetExceeded,  // an update that would take a site past its differential-privacy budget
  Unsigned,       // an upload without the signature its site's registered key (or the server) requires
  BadSignature,   // a signature that does not verify: tampered content, or another key than the one trusted
  Replay,         // a signed request seen before (its nonce was already used by this site)
  Checksum,       // content whose SHA-256 differs from the one announced
  Unreachable,    // the server could not be reached
  Server,         // the server failed or answered something unexpected
  Corrupt,        // stored data that is inconsistent or damaged
  Io,             // the operating system refused a read or write
  Internal,       // a bug: a broken invariant
};

// "bad_request", "not_found", …: the code as APIs and logs spell it.
std::string_view codeName(ErrorCode code);
// The code for a name from codeName(); BadRequest for names that are not in the table.
ErrorCode codeFromName(std::string_view name);
// The HTTP status a server answers with.
int httpStatus(ErrorCode code);
// The exit status of the `tessera` command: 1 data and I/O problems, 2 usage and configuration,
// 3 not found, 4 credentials, 5 refused by policy or a size limit, 6 the server failed or is away.
int exitStatus(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }
  std::string_view codeName() const { return tessera::codeName(code_); }
  int httpStatus() const { return tessera::httpStatus(code_); }
  int exitStatus() const { return tessera::exitStatus(code_); }

 private:
  ErrorCode code_;
};

}  // namespace tessera
