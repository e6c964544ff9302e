#pragma once
// The built `tessera` binary (TESSERA_BINARY) run as an operator runs it, for the tests that
// prepare a real server's data folder with the admin CLI.

#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tessera/common/ChildProcess.h"

namespace tessera::test {

// Runs `tessera ARGS…` and returns its stdout; throws with the log on failure.
inline std::string tessera(const std::vector<std::string>& args, const std::filesystem::path& log) {
  const std::filesystem::path out = log.string() + ".out";
  std::vector<std::string> all{TESSERA_BINARY};
  all.insert(all.end(), args.begin(), args.end());
  common::runProcess(all, out);
  std::ifstream in(out);
  std::stringstream text;
  text << in.rdbuf();
  std::filesystem::remove(out);
  return text.str();
}

// The last line of `text` (a printed token, say), without trailing white space.
inline std::string lastLine(std::string text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  const auto newline = text.rfind('\n');
  return newline == std::string::npos ? text : text.substr(newline + 1);
}

}  // namespace tessera::test
