#pragma once
// The one rule for task names. A task name travels everywhere: API paths (/v1/models/<task>/…),
// the server's validation folder (DATA/validation/<task>/), the client's cache and state folders
// (<home>/models/<task>/, <home>/sites-state/<task>/), the registry. So it must be a safe single
// path component and URL segment by construction, and one validator is used by all of them:
//
//   1..64 characters of a-z, 0-9, '.', '_' and '-'; the first one a letter or digit (so never
//   "." or ".." or a hidden file); not a word the API uses as a route segment (latest,
//   generations, updates, policy, model, models, events, stats).
//
// Models saved with the default task "segmentation" satisfy it.

#include <cstddef>
#include <string>
#include <string_view>

namespace tessera::model {

inline constexpr std::size_t kMaxTaskNameLength = 64;

// The rule in one sentence, for messages and help texts.
const std::string& taskNameRule();

// Empty when `name` is a valid task name; otherwise what is wrong with it (a short phrase).
std::string taskNameProblem(std::string_view name);
inline bool isValidTaskName(std::string_view name) { return taskNameProblem(name).empty(); }

// Throws Error(ErrorCode::BadRequest, "<what> '<name>' is not a valid task name: <problem>
// (<rule>)"), the name shown printable and cut to 80 characters. `what` names where the name
// came from ("--task", "the model's task", "task in the URL").
void requireValidTaskName(std::string_view name, std::string_view what = "task");

}  // namespace tessera::model
