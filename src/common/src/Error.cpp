#include "tessera/common/Error.h"

#include <array>

namespace tessera {

namespace {
struct CodeInfo {
  ErrorCode code;
  std::string_view name;
  int http;
  int exit;
};

// One row per code, in the enum's order (checked by the tests).
constexpr std::array kCodes{
    CodeInfo{ErrorCode::BadRequest, "bad_request", 400, 2},
    CodeInfo{ErrorCode::Config, "config", 400, 2},
    CodeInfo{ErrorCode::Unauthorized, "unauthorized", 401, 4},
    CodeInfo{ErrorCode::Forbidden, "forbidden", 403, 4},
    CodeInfo{ErrorCode::NotFound, "not_found", 404, 3},
    CodeInfo{ErrorCode::Conflict, "conflict", 409, 5},
    CodeInfo{ErrorCode::TooLarge, "too_large", 413, 5},
    CodeInfo{ErrorCode::RateLimited, "rate_limited", 429, 5},
    CodeInfo{ErrorCode::BadImage, "bad_image", 422, 1},
    CodeInfo{ErrorCode::BadModel, "bad_model", 422, 1},
    CodeInfo{ErrorCode::BadDataset, "bad_dataset", 422, 1},
    CodeInfo{ErrorCode::BadUpdate, "bad_update", 422, 5},
    CodeInfo{ErrorCode::ShapeMismatch, "shape_mismatch", 422, 5},
    CodeInfo{ErrorCode::NonFinite, "non_finite", 422, 5},
    CodeInfo{ErrorCode::NormTooLarge, "norm_too_large", 422, 5},
    CodeInfo{ErrorCode::UnknownBase, "unknown_base", 422, 5},
    CodeInfo{ErrorCode::StaleBase, "stale_base", 422, 5},
    CodeInfo{ErrorCode::TaskMismatch, "task_mismatch", 422, 5},
    CodeInfo{ErrorCode::Rejected, "rejected", 422, 5},
    CodeInfo{ErrorCode::PrivacyBudgetExceeded, "privacy_budget_exceeded", 403, 5},
    CodeInfo{ErrorCode::Unsigned, "unsigned", 401, 4},
    CodeInfo{ErrorCode::BadSignature, "bad_signature", 403, 4},
    CodeInfo{ErrorCode::Replay, "replay", 409, 5},
    CodeInfo{ErrorCode::Checksum, "checksum", 502, 6},
    CodeInfo{ErrorCode::Unreachable, "unreachable", 503, 6},
    CodeInfo{ErrorCode::Server, "server", 502, 6},
    CodeInfo{ErrorCode::Corrupt, "corrupt", 500, 1},
    CodeInfo{ErrorCode::Io, "io", 500, 1},
    CodeInfo{ErrorCode::Internal, "internal", 500, 1},
};

const CodeInfo& info(ErrorCode code) {
  const auto index = static_cast<size_t>(code);
  return index < kCodes.size() ? kCodes[index] : kCodes[static_cast<size_t>(ErrorCode::Internal)];
}
}  // namespace

std::string_view codeName(ErrorCode code) { return info(code).name; }
int httpStatus(ErrorCode code) { return info(code).http; }
int exitStatus(ErrorCode code) { return info(code).exit; }

ErrorCode codeFromName(std::string_view name) {
  for (const auto& c : kCodes) {
    if (c.name == name) return c.code;
  }
  return ErrorCode::BadRequest;
}

}  // namespace tessera
