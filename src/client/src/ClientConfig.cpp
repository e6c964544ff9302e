#include "tessera/client/ClientConfig.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <pwd.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "tessera/common/Error.h"
#include "tessera/model/TaskName.h"

namespace tessera::client {

namespace fs = std::filesystem;

namespace {

std::optional<std::string> environment(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

// Relative paths in a config file mean "next to the file", not "wherever the command runs".
std::string besideFile(const fs::path& file, const std::string& value) {
  const fs::path p(value);
  if (p.is_absolute() || value.empty()) return value;
  return (file.parent_path() / p).lexically_normal().string();
}

}  // namespace

ConfigLayer readConfigFile(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw Error(ErrorCode::Config, file.string() + ": cannot open the client config file");
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(ErrorCode::Config, file.string() + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(ErrorCode::Config, file.string() + ": must hold a JSON object, got " + j.type_name());

  ConfigLayer layer;
  for (const auto& [key, value] : j.items()) {
    std::optional<std::string>* field = nullptr;
    if (key == "server") field = &layer.server;
    else if (key == "token") field = &layer.token;
    else if (key == "task") field = &layer.task;
    else if (key == "home") field = &layer.home;
    else if (key == "ca_cert") field = &layer.caCert;
    else if (key == "pin_sha256") field = &layer.pinSha256;
    else if (key == "server_key") field = &layer.serverKey;
    else {
      // A typo such as "tokn" would otherwise silently fall back to another layer's token.
      throw Error(ErrorCode::Config, file.string() + ": unknown key '" + key +
                                      "' (known: server, token, task, home, ca_cert, pin_sha256, server_key)");
    }
    if (!value.is_string()) {
      throw Error(ErrorCode::Config, file.string() + ": key '" + key + "' must be a string, got " + value.type_name());
    }
    *field = value.get<std::string>();
  }
  if (layer.task && !layer.task->empty()) model::requireValidTaskName(*layer.task, file.string() + ": key 'task'");
  if (layer.home) layer.home = besideFile(file, *layer.home);
  if (layer.caCert) layer.caCert = besideFile(file, *layer.caCert);
  return layer;
}

ConfigLayer configFromEnvironment() {
  ConfigLayer layer;
  layer.server = environment("TESSERA_SERVER");
  layer.token = environment("TESSERA_TOKEN");
  layer.home = environment("TESSERA_HOME");
  return layer;
}

fs::path defaultHome() {
  if (auto home = environment("HOME")) return fs::path(*home) / ".tessera";
  // Services started without a login environment still have a passwd entry.
  if (const passwd* pw = getpwuid(getuid()); pw != nullptr && pw->pw_dir != nullptr) {
    return fs::path(pw->pw_dir) / ".tessera";
  }
  throw Error(ErrorCode::Config, "cannot find a home folder for the site state: set TESSERA_HOME or pass --home");
}

ClientConfig mergeConfig(const ConfigLayer& flags, const ConfigLayer& file, const ConfigLayer& environment) {
  ClientConfig config;
  auto pick = [&](std::optional<std::string> ConfigLayer::*field, std::string& out) {
    for (const ConfigLayer* layer : {&flags, &file, &environment}) {
      if (layer->*field) {
        out = *(layer->*field);
        return;
      }
    }
  };
  pick(&ConfigLayer::server, config.server);
  pick(&ConfigLayer::token, config.token);
  pick(&ConfigLayer::task, config.task);
  // Empty means "not set" (commands that need a task say so); anything else must be a valid name.
  if (!config.task.empty()) model::requireValidTaskName(config.task, "task setting");
  pick(&ConfigLayer::caCert, config.caCert);
  pick(&ConfigLayer::pinSha256, config.pinSha256);
  pick(&ConfigLayer::serverKey, config.serverKey);
  std::string home;
  pick(&ConfigLayer::home, home);
  config.home = home.empty() ? defaultHome() : fs::path(home);
  return config;
}

ClientConfig ClientConfig::load(const fs::path& file) {
  return mergeConfig({}, readConfigFile(file), configFromEnvironment());
}

std::optional<fs::path> defaultConfigFile(const std::optional<std::string>& homeFlag) {
  fs::path home;
  if (homeFlag && !homeFlag->empty()) home = *homeFlag;
  else if (auto env = environment("TESSERA_HOME")) home = *env;
  else home = defaultHome();
  const fs::path file = home / "client.json";
  std::error_code ec;
  if (fs::is_regular_file(file, ec)) return file;
  return std::nullopt;
}

}  // namespace tessera::client
