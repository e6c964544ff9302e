#pragma once
// Where a site's client talks to and keeps its state. Settings come from four layers, the first
// one that sets a field wins: command-line flags, the config file (client.json), the environment
// (TESSERA_SERVER, TESSERA_TOKEN, TESSERA_HOME), built-in defaults.

#include <filesystem>
#include <optional>
#include <string>

namespace tessera::client {

struct ClientConfig {
  std::string server = "http://127.0.0.1:8470";
  std::string token;
  std::string task;
  std::filesystem::path home;  // site state folder: ~/.tessera unless TESSERA_HOME says otherwise
  std::string caCert;          // PEM file trusted for https:// servers (empty: the system store)
  // SHA-256 of the server certificate's DER encoding (what `openssl x509 -noout -fingerprint
  // -sha256` prints; colons optional): checked on top of the usual chain and host name checks.
  std::string pinSha256;
  // The server's Ed25519 public key (hex or base64): generations must be signed with it. Empty:
  // the key the server presents on first contact is pinned in home/trusted-servers.json.
  std::string serverKey;
  // Allows plain http:// to a host other than this machine (tokens and updates in clear).
  bool insecure = false;

  // The file's settings over the environment's over the defaults. Throws Error("config")
  // naming the file and the key when the file is unreadable, not JSON, or a value has the wrong type.
  static ClientConfig load(const std::filesystem::path& file);
};

// One layer of settings: only the fields it sets.
struct ConfigLayer {
  std::optional<std::string> server, token, task, home, caCert, pinSha256, serverKey;
};

// Keys: server, token, task, home, ca_cert, pin_sha256, server_key (strings). Relative `home` and `ca_cert` are taken
// relative to the file's folder, so a config can travel with the state folder it describes.
ConfigLayer readConfigFile(const std::filesystem::path& file);
ConfigLayer configFromEnvironment();
// The site state folder when nothing sets it: $HOME/.tessera.
std::filesystem::path defaultHome();

// First layer that sets a field wins; `home` falls back to defaultHome().
ClientConfig mergeConfig(const ConfigLayer& flags, const ConfigLayer& file, const ConfigLayer& environment);

// The config file used when --config is not given: <home>/client.json, where home comes from the
// flag, then TESSERA_HOME, then the default. Empty when that file does not exist.
std::optional<std::filesystem::path> defaultConfigFile(const std::optional<std::string>& homeFlag);

}  // namespace tessera::client
