#include "ServerTrust.h"

#include <filesystem>
#include <optional>

#include "tessera/common/AtomicFile.h"
#include "tessera/common/Ed25519.h"
#include "tessera/common/Error.h"
#include "tessera/common/SignedMessages.h"

namespace tessera::client {

namespace fs = std::filesystem;

namespace {

fs::path trustFile(const ClientConfig& config) { return config.home / "trusted-servers.json"; }

nlohmann::json readTrust(const fs::path& file) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return nlohmann::json::object();
  try {
    nlohmann::json j = nlohmann::json::parse(common::readFile(file));
    if (j.is_object()) return j;
  } catch (const std::exception&) {
  }
  // A damaged pin file must not silently turn into "trust whatever comes next".
  throw Error(ErrorCode::Config, file.string() + ": not a JSON object of server URL → public key; fix or delete it");
}

std::string trustedKey(const ClientConfig& config, ApiClient& api, std::ostream& log) {
  if (!config.serverKey.empty()) return common::normalizePublicKey(config.serverKey, "server_key");
  const fs::path file = trustFile(config);
  nlohmann::json trust = readTrust(file);
  const std::string url = api.serverUrl();
  if (trust.contains(url) && trust[url].is_string()) return common::normalizePublicKey(trust[url].get<std::string>(), file.string());
  nlohmann::json presented;
  try {
    presented = api.serverKey();
  } catch (const Error& e) {
    if (e.code() != ErrorCode::NotFound) throw;
    return "";
  }
  const std::string key = common::normalizePublicKey(presented.value("public_key", ""), "the key the server at " + url + " presents");
  trust[url] = key;
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  common::writeFileAtomically(file, trust.dump(2) + "\n");
  log << "tessera: trusting the server key " << key << " of " << url << " from now on (first contact; pinned in "
      << file.string() << ", or set server_key)\n";
  return key;
}

}  // namespace

void verifyGenerationRecord(const ClientConfig& config, ApiClient& api, const nlohmann::json& g, std::ostream& log) {
  const std::string key = trustedKey(config, api, log);
  const std::string what = "generation " + g.value("generation", nlohmann::json()).dump() + " of " + config.task + " from " +
                           api.serverUrl();
  if (key.empty()) {
    log << "tessera: warning: the server at " << api.serverUrl() << " does not sign its generations; " << what
        << " is used unverified\n";
    return;
  }
  const auto signature = g.value("signature", nlohmann::json());
  if (!signature.is_string()) {
    throw Error(ErrorCode::Unsigned, what + " carries no signature, but generations of this server must be signed by key " +
                                         key.substr(0, 16) + "…");
  }
  common::GenerationSignatureFields fields;
  try {
    fields.task = g.at("task").get<std::string>();
    fields.generation = g.at("generation").get<int64_t>();
    if (!g.at("parent").is_null()) fields.parent = g.at("parent").get<int64_t>();
    fields.weightsSha256 = g.at("weights_sha256").get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::Server, what + ": the record lacks a field its signature covers: " + e.what());
  }
  if (fields.task != config.task) throw Error(ErrorCode::BadSignature, what + " is signed for task '" + fields.task + "'");
  if (!common::verifySignature(key, common::generationSignatureMessage(fields), signature.get<std::string>())) {
    throw Error(ErrorCode::BadSignature, what + ": the server's signature does not verify (weights " +
                                             fields.weightsSha256.substr(0, 12) +
                                             "…): the generation was altered on the server or on the way, or the server "
                                             "key changed; refusing to use it");
  }
}

}  // namespace tessera::client
