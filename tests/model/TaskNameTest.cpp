// The one task-name rule (tessera/model/TaskName.h): what passes, what is refused and how the
// refusal reads. Every place that takes a task name (API routes, admin commands, seeding, the
// client's settings and cache, train --task) relies on it.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tessera/common/Error.h"
#include "tessera/model/TaskInfo.h"
#include "tessera/model/TaskName.h"

using namespace tessera::model;
using tessera::Error;
using tessera::ErrorCode;

namespace {

// The message of the Error requireValidTaskName throws (fails the test if it does not throw BadRequest).
std::string refusal(const std::string& name, const std::string& what = "task") {
  try {
    requireValidTaskName(name, what);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::BadRequest) << name;
    return e.what();
  }
  ADD_FAILURE() << "'" << name << "' was accepted";
  return {};
}

}  // namespace

TEST(TaskName, AcceptsLowerCaseLettersDigitsDotsUnderscoresAndDashes) {
  for (const std::string& name : std::vector<std::string>{"brain", "brain-mr", "liver-ct", "knee_mr.v2", "0", "3d-unet", "a.b", "a..b", "x-",
                                 std::string(64, 'a'), "latest2", "model-a", "generation"}) {
    EXPECT_TRUE(isValidTaskName(name)) << name << ": " << taskNameProblem(name);
    EXPECT_NO_THROW(requireValidTaskName(name)) << name;
  }
}

TEST(TaskName, TheDefaultTaskOfModelFilesIsValid) {
  // Models saved before the rule existed carry the default task name.
  EXPECT_TRUE(isValidTaskName(TaskInfo{}.name)) << TaskInfo{}.name;
}

TEST(TaskName, RefusesPathsEmptyNamesAndOtherCharacters) {
  for (const std::string& name : std::vector<std::string>{"", ".", "..", "../..", "../x", "a/b", "/etc", "a\\b", ".hidden", "-x", "_x", "brain tumour",
                                 "brain\n", "caf\xc3\xa9", "a%2fb", "a?b", "a#b", "a:b", "a*", std::string("a\0b", 3)}) {
    EXPECT_FALSE(isValidTaskName(name)) << "'" << name << "'";
    refusal(name);
  }
}

TEST(TaskName, RefusesUpperCase) {
  EXPECT_FALSE(isValidTaskName("Brain"));
  EXPECT_FALSE(isValidTaskName("brain-MR"));
  EXPECT_NE(refusal("brain-MR").find("upper-case"), std::string::npos);
  EXPECT_NE(refusal("Brain").find("upper-case"), std::string::npos);
}

TEST(TaskName, RefusesMoreThan64Characters) {
  EXPECT_TRUE(isValidTaskName(std::string(64, 'x')));
  EXPECT_FALSE(isValidTaskName(std::string(65, 'x')));
  EXPECT_NE(refusal(std::string(65, 'x')).find("65 characters"), std::string::npos);
}

TEST(TaskName, RefusesTheWordsOfTheApiRoutes) {
  for (const std::string word : {"latest", "generations", "updates", "policy", "model", "models", "events", "stats"}) {
    EXPECT_FALSE(isValidTaskName(word)) << word;
    EXPECT_NE(refusal(word).find("route"), std::string::npos) << word;
  }
}

TEST(TaskName, TheMessageNamesTheSourceTheValueAndTheRule) {
  const std::string message = refusal("../..", "--task");
  EXPECT_EQ(message.rfind("--task '../..' is not a valid task name", 0), 0u) << message;
  EXPECT_NE(message.find(taskNameRule()), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << "one line";
  EXPECT_NE(refusal("").find("'' is not a valid task name: it is empty"), std::string::npos);
  EXPECT_NE(refusal("..").find("it must start with a letter or a digit"), std::string::npos);
  EXPECT_NE(refusal("a/b").find("it holds '/'"), std::string::npos);
}

TEST(TaskName, HostileValuesAreShownPrintableAndShort) {
  const std::string message = refusal("a\nb\x01" + std::string(500, 'z'));
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_NE(message.find("a\\x0ab\\x01"), std::string::npos) << message;
  EXPECT_LT(message.size(), 500u) << message;
}
