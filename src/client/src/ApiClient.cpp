#include "tessera/client/ApiClient.h"

#include <algorithm>
#include <cctype>
#include <regex>

#include <httplib.h>

#include "tessera/common/Error.h"
#include "tessera/common/Sha256.h"

namespace tessera::client {

namespace {

constexpr time_t kConnectSeconds = 5;
// Downloads and uploads of large models over slow hospital links take minutes.
constexpr time_t kTransferSeconds = 300;

// RFC 3986 unreserved characters stay, everything else is %XX: task names and ids go into paths
// and queries verbatim otherwise, and a '/' or '?' in one would address another resource.
std::string percentEncode(const std::string& text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string modelPath(const std::string& task) { return "/v1/models/" + percentEncode(task); }

struct ServerReason {
  std::string code;
  std::string message;
  std::string text() const { return code.empty() ? message : code + ": " + message; }
};

// The documented {"error":{"code","message"}} body, or what the body says otherwise (a proxy's
// HTML page, for instance), cut to one line.
ServerReason reasonOf(const httplib::Response& response) {
  ServerReason reason;
  try {
    const auto j = nlohmann::json::parse(response.body);
    if (j.is_object() && j.contains("error") && j["error"].is_object()) {
      const auto& e = j["error"];
      if (e.contains("code") && e["code"].is_string()) reason.code = e["code"].get<std::string>();
      if (e.contains("message") && e["message"].is_string()) reason.message = e["message"].get<std::string>();
    }
  } catch (const nlohmann::json::exception&) {
  }
  if (reason.message.empty()) {
    std::string body = response.body.substr(0, 200);
    std::replace_if(body.begin(), body.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
    reason.message = body.empty() ? "HTTP " + std::to_string(response.status) : body;
  }
  return reason;
}

// httplib's names for transport errors ("Connection", "Read") with what they usually mean.
// `verifyResult`: OpenSSL's verdict on the certificate chain, to tell an untrusted chain from a
// trusted certificate issued for another host name.
std::string describe(httplib::Error error, long verifyResult) {
  std::string hint;
  switch (error) {
    case httplib::Error::Connection:
      hint = "refused or no route: is the server running and the URL right?";
      break;
    case httplib::Error::ConnectionTimeout:
      hint = "no answer within " + std::to_string(kConnectSeconds) + " s";
      break;
    case httplib::Error::Read:
      hint = "the connection broke or timed out while reading the answer";
      break;
    case httplib::Error::Write:
      hint = "the connection broke or timed out while sending";
      break;
    case httplib::Error::SSLConnection:
      hint = "TLS handshake failed: is it an https:// server?";
      break;
    case httplib::Error::SSLLoadingCerts:
      hint = "cannot load the CA certificates (ca_cert)";
      break;
    case httplib::Error::SSLServerVerification:
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
      if (verifyResult == X509_V_OK) {
        hint = "the server's certificate is trusted but was not issued for this host name: use the name it was "
               "issued for in the server URL";
      } else {
        hint = std::string("the server's certificate is not trusted (") + X509_verify_cert_error_string(verifyResult) +
               "): give its CA certificate as ca_cert";
      }
#else
      (void)verifyResult;
      hint = "the server's certificate is not trusted: give its CA certificate as ca_cert";
#endif
      break;
    default:
      break;
  }
  const std::string name = httplib::to_string(error);
  return hint.empty() ? name : name + " (" + hint + ")";
}

struct Reply {
  std::string body;
  httplib::Headers headers;
};

// localhost, 127.0.0.0/8 and ::1, with or without a port: traffic that never leaves the machine.
bool isLoopback(std::string host) {
  if (!host.empty() && host.front() == '[') {
    host = host.substr(1, host.find(']') - 1);
  } else if (const auto colon = host.rfind(':'); colon != std::string::npos) {
    host = host.substr(0, colon);
  }
  std::transform(host.begin(), host.end(), host.begin(), [](unsigned char c) { return std::tolower(c); });
  static const std::regex v4(R"(127\.\d{1,3}\.\d{1,3}\.\d{1,3})");
  return host == "localhost" || host == "::1" || std::regex_match(host, v4);
}

// 64 hex digits, colons allowed between them, as lower case.
std::string normalizedPin(const std::string& text) {
  std::string hex;
  bool ok = true;
  for (const char c : text) {
    if (c == ':') continue;
    if (!std::isxdigit(static_cast<unsigned char>(c))) ok = false;
    hex += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (!ok || hex.size() != 64) {
    throw Error(ErrorCode::Config, "pin_sha256 '" + text.substr(0, 100) +
                                       "' is not a SHA-256 (64 hex digits, colons allowed, as `openssl x509 -noout "
                                       "-fingerprint -sha256 -in CERT` prints it)");
  }
  return hex;
}

#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
// OpenSSL's chain verification, then the leaf certificate's SHA-256 against the pin. A mismatch
// is reported as X509_V_ERR_CERT_REJECTED, which httplib turns into a verification failure.
int verifyChainAndPin(X509_STORE_CTX* store, void* arg) {
  const auto* pin = static_cast<const std::string*>(arg);
  if (X509_verify_cert(store) <= 0) return 0;
  X509* leaf = X509_STORE_CTX_get0_cert(store);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (leaf == nullptr || X509_digest(leaf, EVP_sha256(), digest, &length) != 1) {
    X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
    return 0;
  }
  static const char* hex = "0123456789abcdef";
  std::string actual;
  for (unsigned int i = 0; i < length; ++i) {
    actual += hex[digest[i] >> 4];
    actual += hex[digest[i] & 15];
  }
  if (actual != *pin) {
    X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
    return 0;
  }
  return 1;
}
#endif

}  // namespace

struct ApiClient::Impl {
  std::string url;     // as configured, for messages
  std::string prefix;  // path the server is mounted under ("" or "/tessera")
  std::string token;
  std::string pin;  // lower-case hex SHA-256 of the server certificate; empty: not pinned
  std::unique_ptr<httplib::Client> http;

  explicit Impl(const ClientConfig& config) : url(config.server), token(config.token) {
    static const std::regex pattern(R"(^(https?)://([^/?#]+)(/[^?#]*)?$)", std::regex::icase);
    std::smatch m;
    if (!std::regex_match(config.server, m, pattern)) {
      throw Error(ErrorCode::Config, "server URL '" + config.server + "' must look like http://HOST[:PORT] or https://HOST[:PORT]");
    }
    std::string scheme = m[1].str();
    std::transform(scheme.begin(), scheme.end(), scheme.begin(), [](unsigned char c) { return std::tolower(c); });
    prefix = m[3].str();
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    if (scheme == "http" && !config.insecure && !isLoopback(m[2].str())) {
      throw Error(ErrorCode::Config, "server URL '" + config.server +
                                      "' is plain HTTP to another machine: the token and the updates would travel in clear; "
                                      "use https:// (or pass --insecure on a network you trust)");
    }
    if (!config.pinSha256.empty()) {
      if (scheme != "https") throw Error(ErrorCode::Config, "pin_sha256 is set but server URL '" + config.server + "' is not https://");
      pin = normalizedPin(config.pinSha256);
    }
#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
    if (scheme == "https") {
      throw Error(ErrorCode::Config, "server URL '" + config.server +
                                      "' is https:// but this tessera was built with a cpp-httplib without OpenSSL support");
    }
#endif
    http = std::make_unique<httplib::Client>(scheme + "://" + m[2].str());
    if (!http->is_valid()) throw Error(ErrorCode::Config, "server URL '" + config.server + "' is not usable: bad host or port");
    http->set_connection_timeout(kConnectSeconds);
    http->set_read_timeout(kTransferSeconds);
    http->set_write_timeout(kTransferSeconds);
    http->set_default_headers({{"User-Agent", "tessera-client/0.1"}});
    if (!token.empty()) http->set_bearer_token_auth(token);
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
    if (scheme == "https") {
      http->enable_server_certificate_verification(true);
      if (!config.caCert.empty()) {
        std::error_code ec;
        if (!std::filesystem::is_regular_file(config.caCert, ec)) {
          throw Error(ErrorCode::Config, "ca_cert '" + config.caCert + "' is not a readable file");
        }
        http->set_ca_cert_path(config.caCert);
      }
      if (!pin.empty()) SSL_CTX_set_cert_verify_callback(http->ssl_context(), verifyChainAndPin, &pin);
    }
#endif
  }

  long verifyResult() const {
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
    return http->get_openssl_verify_result();
#else
    return 0;
#endif
  }

  Reply send(const std::string& method, const std::string& path, const std::string& body = {},
             const std::string& contentType = {}, const std::string& rejectedLead = {},
             const std::map<std::string, std::string>& extraHeaders = {}) {
    if (token.empty() && path.rfind("/v1/", 0) == 0) {
      throw Error(ErrorCode::Config, "no token for the server at " + url +
                                      ": pass --token, set TESSERA_TOKEN or add \"token\" to the client config");
    }
    const std::string target = prefix + path;
    const httplib::Headers headers(extraHeaders.begin(), extraHeaders.end());
    httplib::Result result = method == "GET"    ? http->Get(target, headers)
                             : method == "PUT" ? http->Put(target, headers, body, contentType)
                                               : http->Post(target, headers, body, contentType);
    if (!result) {
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
      if (!pin.empty() && result.error() == httplib::Error::SSLServerVerification &&
          verifyResult() == X509_V_ERR_CERT_REJECTED) {
        throw Error(ErrorCode::Unreachable, "refusing the server at " + url +
                                                ": its certificate's SHA-256 differs from pin_sha256 " + pin +
                                                " (another server, or its certificate was replaced)");
      }
#endif
      throw Error(ErrorCode::Unreachable, "cannot reach the Tessera server at " + url + ": " + describe(result.error(), verifyResult()));
    }
    const httplib::Response& response = result.value();
    if (response.status >= 200 && response.status < 300) return {response.body, response.headers};
    throwForStatus(response, method + " " + path, rejectedLead);
  }

  [[noreturn]] void throwForStatus(const httplib::Response& response, const std::string& request,
                                   const std::string& rejectedLead) const {
    const ServerReason reason = reasonOf(response);
    const std::string status = "(" + std::to_string(response.status) + ")";
    // Integrity refusals keep their own codes: a script must tell a tampered or replayed upload
    // from a bad token or a full round.
    if (reason.code == "unsigned" || reason.code == "bad_signature" || reason.code == "replay") {
      const std::string lead = rejectedLead.empty() ? "the server refused " + request : rejectedLead;
      throw Error(codeFromName(reason.code), lead + " " + status + ": " + reason.text());
    }
    switch (response.status) {
      case 401:
        throw Error(ErrorCode::Unauthorized, "the server refused the token " + status + ": " + reason.message);
      case 403:
        throw Error(ErrorCode::Forbidden, "the server does not allow this token to " + request + " " + status + ": " +
                                           reason.message);
      case 404:
        throw Error(ErrorCode::NotFound, "not found on the server: " + request + " " + status + ": " + reason.message);
      case 429: {
        const std::string after = response.get_header_value("Retry-After");
        throw Error(ErrorCode::RateLimited, "the server is limiting " + request + " " + status + ": " + reason.message +
                                                (after.empty() ? "" : " (retry after " + after + " s)"));
      }
      case 400:
      case 409:
      case 413:
      case 422: {
        const std::string lead = rejectedLead.empty() ? "the server rejected " + request + " " + status : rejectedLead;
        throw Error(ErrorCode::Rejected, lead + ": " + reason.text());
      }
      default:
        if (response.status >= 500) {
          throw Error(ErrorCode::Server, "the server at " + url + " failed on " + request + " " + status + ": " + reason.text());
        }
        throw Error(ErrorCode::Server, "the server at " + url + " answered " + request + " with unexpected status " +
                                        std::to_string(response.status) + ": " + reason.text());
    }
  }

  nlohmann::json json(const std::string& method, const std::string& path, const std::string& body = {},
                      const std::string& contentType = {}, const std::string& rejectedLead = {}) {
    const Reply reply = send(method, path, body, contentType, rejectedLead);
    try {
      return nlohmann::json::parse(reply.body);
    } catch (const nlohmann::json::parse_error& e) {
      throw Error(ErrorCode::Server, "the server at " + url + " answered " + method + " " + path +
                                      " with something that is not JSON: " + e.what());
    }
  }
};

ApiClient::ApiClient(const ClientConfig& config) : impl_(std::make_unique<Impl>(config)) {}
ApiClient::~ApiClient() = default;

const std::string& ApiClient::serverUrl() const { return impl_->url; }

nlohmann::json ApiClient::whoami() { return impl_->json("GET", "/v1/whoami"); }

nlohmann::json ApiClient::models(const std::map<std::string, std::string>& filter) {
  std::string query;
  for (const auto& [key, value] : filter) {
    query += query.empty() ? '?' : '&';
    query += percentEncode(key);
    query += '=';
    query += percentEncode(value);
  }
  return impl_->json("GET", "/v1/models" + query);
}

nlohmann::json ApiClient::model(const std::string& task) { return impl_->json("GET", modelPath(task)); }

nlohmann::json ApiClient::generations(const std::string& task) {
  return impl_->json("GET", modelPath(task) + "/generations");
}

nlohmann::json ApiClient::generation(const std::string& task, int64_t generation) {
  return impl_->json("GET", modelPath(task) + "/generations/" + std::to_string(generation));
}

nlohmann::json ApiClient::latestGeneration(const std::string& task) {
  return impl_->json("GET", modelPath(task) + "/generations/latest");
}

nlohmann::json ApiClient::update(const std::string& id) { return impl_->json("GET", "/v1/updates/" + percentEncode(id)); }

nlohmann::json ApiClient::stats() { return impl_->json("GET", "/v1/stats"); }

std::string ApiClient::downloadModel(const std::string& task, int64_t generation) {
  const std::string path = modelPath(task) + "/generations/" + std::to_string(generation) + "/model";
  return downloadVerified(path, "model of " + task + " generation " + std::to_string(generation) + " from " + impl_->url);
}

nlohmann::json ApiClient::candidate(const std::string& task) { return impl_->json("GET", modelPath(task) + "/candidate"); }

std::string ApiClient::downloadCandidate(const std::string& task) {
  return downloadVerified(modelPath(task) + "/candidate/model", "candidate of " + task + " from " + impl_->url);
}

nlohmann::json ApiClient::reportCandidateDice(const std::string& task, const nlohmann::json& report) {
  return impl_->json("POST", modelPath(task) + "/candidate/dice", report.dump(), "application/json", "candidate report refused by the server");
}

std::string ApiClient::downloadVerified(const std::string& path, const std::string& where) {
  Reply reply = impl_->send("GET", path);
  const auto header = reply.headers.find("X-Tessera-Sha256");
  if (header == reply.headers.end()) {
    throw Error(ErrorCode::Checksum, where + ": the server sent no X-Tessera-Sha256 header, so the download cannot be verified");
  }
  std::string expected = header->second;
  std::transform(expected.begin(), expected.end(), expected.begin(), [](unsigned char c) { return std::tolower(c); });
  const std::string actual = common::sha256Hex(reply.body);
  if (actual != expected) {
    throw Error(ErrorCode::Checksum, where + ": the " + std::to_string(reply.body.size()) + " bytes received hash to " +
                                      actual + " but the server announced " + expected +
                                      " (corrupted or truncated transfer; pull again)");
  }
  return std::move(reply.body);
}

nlohmann::json ApiClient::pushUpdate(const std::string& task, const std::string& updateBytes,
                                     const std::map<std::string, std::string>& headers) {
  const Reply reply = impl_->send("POST", modelPath(task) + "/updates", updateBytes, "application/octet-stream",
                                  "update rejected by the server", headers);
  try {
    return nlohmann::json::parse(reply.body);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(ErrorCode::Server, "the server at " + impl_->url + " answered an upload with something that is not JSON: " + e.what());
  }
}

namespace {
// 202 (the step waits for other sites) answers JSON; a closed step's relay is protocol bytes.
ApiClient::SecAggReply secAggReplyOf(Reply reply) {
  const auto type = reply.headers.find("Content-Type");
  const bool json = type != reply.headers.end() && type->second.rfind("application/json", 0) == 0;
  bool waiting = false;
  if (json) {
    try {
      waiting = nlohmann::json::parse(reply.body).contains("waiting");
    } catch (const nlohmann::json::parse_error&) {
    }
  }
  return {waiting, std::move(reply.body)};
}
}  // namespace

ApiClient::SecAggReply ApiClient::secAggJoin(const std::string& task, int64_t baseGeneration) {
  return secAggReplyOf(impl_->send("POST", modelPath(task) + "/secagg/join", nlohmann::json{{"base_generation", baseGeneration}}.dump(),
                                   "application/json", "secure-aggregation join refused by the server"));
}

ApiClient::SecAggReply ApiClient::secAggPost(const std::string& task, const std::string& step, const std::string& round,
                                             const std::string& message, const std::map<std::string, std::string>& headers) {
  return secAggReplyOf(impl_->send("POST", modelPath(task) + "/secagg/" + step + "?round=" + percentEncode(round), message,
                                   "application/octet-stream", "secure-aggregation " + step + " refused by the server", headers));
}

ApiClient::SecAggReply ApiClient::secAggGet(const std::string& task, const std::string& step, const std::string& round) {
  return secAggReplyOf(impl_->send("GET", modelPath(task) + "/secagg/" + step + "?round=" + percentEncode(round)));
}

nlohmann::json ApiClient::secAggStatus(const std::string& task, const std::string& round) {
  return impl_->json("GET", modelPath(task) + "/secagg/status?round=" + percentEncode(round));
}

nlohmann::json ApiClient::serverKey() { return impl_->json("GET", "/v1/server-key"); }

nlohmann::json ApiClient::seedModel(const std::string& tsmBytes, const std::string& strategy) {
  const std::string query = strategy.empty() ? "" : "?strategy=" + percentEncode(strategy);
  return impl_->json("POST", "/v1/models" + query, tsmBytes, "application/octet-stream", "model rejected by the server");
}

nlohmann::json ApiClient::setPolicy(const std::string& task, const nlohmann::json& patch) {
  return impl_->json("PUT", modelPath(task) + "/policy", patch.dump(), "application/json", "policy rejected by the server");
}

nlohmann::json ApiClient::postEvents(const nlohmann::json& events) {
  const nlohmann::json body{{"events", events}};
  return impl_->json("POST", "/v1/events", body.dump(), "application/json", "events rejected by the server");
}

}  // namespace tessera::client
