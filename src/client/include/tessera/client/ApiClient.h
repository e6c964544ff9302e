#pragma once
// The federation server's HTTP API (docs/API.md) as C++ calls. Every failure becomes a
// Error whose message carries the server's own reason ({"error":{"code","message"}}).
// cpp-httplib stays out of this header so users of the client do not compile against it.

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "tessera/client/ClientConfig.h"

namespace tessera::client {

class ApiClient {
 public:
  // Throws Error("config") for a URL that is not http(s)://host[:port][/prefix], an https:// URL
  // when cpp-httplib was built without OpenSSL, a plain http:// URL to a host other than this
  // machine without config.insecure, and a pin that is not a SHA-256 or not for https://.
  explicit ApiClient(const ClientConfig& config);
  ~ApiClient();
  ApiClient(const ApiClient&) = delete;
  ApiClient& operator=(const ApiClient&) = delete;

  const std::string& serverUrl() const;

  nlohmann::json whoami();
  // Filter keys: task, modality, anatomy, disease (exact, case-insensitive on the server).
  nlohmann::json models(const std::map<std::string, std::string>& filter = {});
  nlohmann::json model(const std::string& task);
  nlohmann::json generations(const std::string& task);
  nlohmann::json generation(const std::string& task, int64_t generation);
  nlohmann::json latestGeneration(const std::string& task);
  nlohmann::json update(const std::string& id);
  nlohmann::json stats();

  // The generation's .tsm bytes; Error("checksum") when they do not hash to the
  // X-Tessera-Sha256 header (or the header is missing).
  std::string downloadModel(const std::string& task, int64_t generation);
  // Body: an encoded update file; `headers` carry its signature (X-Tessera-Nonce,
  // X-Tessera-Signature). Answers {"update":id,"status":"queued"}.
  nlohmann::json pushUpdate(const std::string& task, const std::string& updateBytes,
                            const std::map<std::string, std::string>& headers = {});
  // {"algorithm": "ed25519", "public_key": hex}: the key the server signs generations with.
  nlohmann::json serverKey();
  // Admin: publishes a .tsm as a new model; `strategy` may be empty (the server's default).
  nlohmann::json seedModel(const std::string& tsmBytes, const std::string& strategy);
  // Admin: changes the fields present in `patch`; answers the whole new policy.
  nlohmann::json setPolicy(const std::string& task, const nlohmann::json& patch);
  // The site gate (server SiteGate.h): the candidate waiting for site reports (Error NotFound
  // when none), its .tsm (checked like downloadModel), and this site's report of its Dice.
  nlohmann::json candidate(const std::string& task);
  std::string downloadCandidate(const std::string& task);
  nlohmann::json reportCandidateDice(const std::string& task, const nlohmann::json& report);
  // Secure aggregation (/v1/models/T/secagg/…, docs/API.md). `waiting`: the server answered 202,
  // the step is still open (body: its JSON); otherwise `body` is the step's answer (protocol
  // bytes for GET keys, my-shares and survivors; JSON otherwise).
  struct SecAggReply {
    bool waiting = false;
    std::string body;
  };
  SecAggReply secAggJoin(const std::string& task, int64_t baseGeneration);
  SecAggReply secAggPost(const std::string& task, const std::string& step, const std::string& round, const std::string& message,
                         const std::map<std::string, std::string>& headers = {});
  SecAggReply secAggGet(const std::string& task, const std::string& step, const std::string& round);
  nlohmann::json secAggStatus(const std::string& task, const std::string& round);
  // `events`: an array of {"type","task","seconds","dice"?} objects.
  nlohmann::json postEvents(const nlohmann::json& events);

 private:
  // The body of GET `path`, checked against its X-Tessera-Sha256 header.
  std::string downloadVerified(const std::string& path, const std::string& where);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera::client
