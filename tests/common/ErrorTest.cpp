#include <set>

#include <gtest/gtest.h>

#include "tessera/common/Error.h"

using tessera::Error;
using tessera::ErrorCode;

TEST(ErrorTable, EveryCodeHasItsOwnNameAndRoundTrips) {
  std::set<std::string> names;
  for (int i = 0; i <= static_cast<int>(ErrorCode::Internal); ++i) {
    const auto code = static_cast<ErrorCode>(i);
    const std::string name(tessera::codeName(code));
    EXPECT_TRUE(names.insert(name).second) << "duplicate name " << name;
    EXPECT_EQ(tessera::codeFromName(name), code) << name;
  }
  EXPECT_EQ(tessera::codeFromName("no_such_code"), ErrorCode::BadRequest);
}

TEST(ErrorTable, HttpStatusesFollowTheApiDocument) {
  EXPECT_EQ(tessera::httpStatus(ErrorCode::BadRequest), 400);
  EXPECT_EQ(tessera::httpStatus(ErrorCode::Unauthorized), 401);
  EXPECT_EQ(tessera::httpStatus(ErrorCode::Forbidden), 403);
  EXPECT_EQ(tessera::httpStatus(ErrorCode::NotFound), 404);
  EXPECT_EQ(tessera::httpStatus(ErrorCode::Conflict), 409);
  EXPECT_EQ(tessera::httpStatus(ErrorCode::TooLarge), 413);
  EXPECT_EQ(tessera::httpStatus(ErrorCode::RateLimited), 429);
  EXPECT_EQ(tessera::codeName(ErrorCode::RateLimited), "rate_limited");
  for (auto c : {ErrorCode::BadUpdate, ErrorCode::ShapeMismatch, ErrorCode::NonFinite, ErrorCode::NormTooLarge,
                 ErrorCode::UnknownBase, ErrorCode::StaleBase, ErrorCode::TaskMismatch}) {
    EXPECT_EQ(tessera::httpStatus(c), 422) << tessera::codeName(c);
  }
  EXPECT_EQ(tessera::httpStatus(ErrorCode::PrivacyBudgetExceeded), 403);
  EXPECT_EQ(tessera::codeName(ErrorCode::PrivacyBudgetExceeded), "privacy_budget_exceeded");
  EXPECT_EQ(tessera::httpStatus(ErrorCode::Unsigned), 401);
  EXPECT_EQ(tessera::httpStatus(ErrorCode::BadSignature), 403);
  EXPECT_EQ(tessera::httpStatus(ErrorCode::Replay), 409);
  EXPECT_EQ(tessera::codeName(ErrorCode::BadSignature), "bad_signature");
  EXPECT_EQ(tessera::httpStatus(ErrorCode::Io), 500);
  EXPECT_EQ(tessera::httpStatus(ErrorCode::Internal), 500);
}

TEST(ErrorTable, ExitStatusesGroupProblemsForScripts) {
  EXPECT_EQ(tessera::exitStatus(ErrorCode::BadImage), 1);
  EXPECT_EQ(tessera::exitStatus(ErrorCode::Config), 2);
  EXPECT_EQ(tessera::exitStatus(ErrorCode::NotFound), 3);
  EXPECT_EQ(tessera::exitStatus(ErrorCode::Unauthorized), 4);
  EXPECT_EQ(tessera::exitStatus(ErrorCode::StaleBase), 5);
  EXPECT_EQ(tessera::exitStatus(ErrorCode::RateLimited), 5);
  EXPECT_EQ(tessera::exitStatus(ErrorCode::Unreachable), 6);
  for (int i = 0; i <= static_cast<int>(ErrorCode::Internal); ++i) {
    const int s = tessera::exitStatus(static_cast<ErrorCode>(i));
    EXPECT_GE(s, 1);
    EXPECT_LE(s, 6);
  }
}

TEST(Error, CarriesCodeAndMessage) {
  const Error e(ErrorCode::NotFound, "x.tsm: no such file");
  EXPECT_EQ(e.code(), ErrorCode::NotFound);
  EXPECT_EQ(e.codeName(), "not_found");
  EXPECT_EQ(e.httpStatus(), 404);
  EXPECT_STREQ(e.what(), "x.tsm: no such file");
}
