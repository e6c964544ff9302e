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

  // The file's settings over the environment's over the defaults. Throws Error("config")
  // naming the file and the key when the file is unreadable, not JSON, or a value has the wrong type.
  static ClientConfig load(const std::filesystem::path& file);
};

// One layer of settings: only the fields it sets.
struct ConfigLayer {
  std::optional<std::string> server, token, task, home, caCert;
};

// Keys: server, token, task, home, ca_cert (strings). Relative `home` and `ca_cert` are taken
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
