#pragma once
// Runs the built `tessera` binary (TESSERA_BINARY) with no standard input and collects what it
// printed, for CLI tests that check exit codes and one-line messages.

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace tessera::test {

struct CliOutput {
  int code = -1;
  std::string text;  // stdout and stderr together
};

inline CliOutput runTessera(const std::string& args) {
  const std::string cmd = std::string(TESSERA_BINARY) + " " + args + " 2>&1 </dev/null";
  FILE* pipe = popen(cmd.c_str(), "r");
  CliOutput out;
  if (!pipe) return out;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) out.text.append(buffer, n);
  const int status = pclose(pipe);
  out.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

}  // namespace tessera::test
