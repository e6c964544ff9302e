#include "tessera/model/TaskName.h"

#include <array>
#include <cstdio>

#include "tessera/common/Error.h"

namespace tessera::model {

namespace {

// Route words: a task with one of these names would make /v1/models/<task>/… ambiguous.
constexpr std::array<std::string_view, 8> kReserved{"latest", "generations", "updates", "policy",
                                                    "model",  "models",      "events",  "stats"};

bool isLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// The name as it may appear in a one-line message: printable ASCII, the rest as \xNN, at most 80.
std::string printable(std::string_view name) {
  std::string out;
  for (const char ch : name.substr(0, 80)) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += ch;
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  if (name.size() > 80) out += "…";
  return out;
}

}  // namespace

const std::string& taskNameRule() {
  static const std::string rule =
      "task names are 1-64 characters of a-z, 0-9, '.', '_' and '-', start with a letter or digit, and are none of "
      "latest, generations, updates, policy, model, models, events, stats";
  return rule;
}

std::string taskNameProblem(std::string_view name) {
  if (name.empty()) return "it is empty";
  if (name.size() > kMaxTaskNameLength) {
    return "it is " + std::to_string(name.size()) + " characters long (at most " + std::to_string(kMaxTaskNameLength) + ")";
  }
  for (const char c : name) {
    if (isLowerAlnum(c) || c == '.' || c == '_' || c == '-') continue;
    if (c >= 'A' && c <= 'Z') return "it has upper-case letters";
    return "it holds '" + printable(std::string_view(&c, 1)) + "'";
  }
  if (!isLowerAlnum(name.front())) return "it must start with a letter or a digit";
  for (const auto word : kReserved) {
    if (name == word) return "'" + std::string(word) + "' is a word of the API's routes";
  }
  return {};
}

void requireValidTaskName(std::string_view name, std::string_view what) {
  const std::string problem = taskNameProblem(name);
  if (problem.empty()) return;
  throw Error(ErrorCode::BadRequest, std::string(what) + " '" + printable(name) + "' is not a valid task name: " + problem +
                                         " (" + taskNameRule() + ")");
}

}  // namespace tessera::model
