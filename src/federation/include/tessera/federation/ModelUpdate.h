#pragma once
// What a site sends: the weights it trained (or their difference to its base generation), the
// generation it started from, how many samples it learnt from and its local metrics.
//
// File layout (little-endian), the same framing as a `.tsm` model:
//   8 bytes "TSUPDATE", u32 version (1), u64 header length + JSON header, u64 weights length +
//   weights section (common::encodeWeights records with the model's tensor names and shapes).

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "tessera/model/Model.h"
#include "tessera/federation/GaussianMechanism.h"

namespace tessera::federation {

enum class UpdateKind { Delta, Weights };

std::string toString(UpdateKind kind);
UpdateKind updateKindFromString(const std::string& text);  // throws Error("bad_update")

struct UpdateHeader {
  std::string task;
  int64_t baseGeneration = 0;
  UpdateKind kind = UpdateKind::Delta;
  double samples = 0;
  std::map<std::string, double> metrics;
  int64_t parameters = 0;
  uint64_t weightsBytes = 0;
  std::string weightsSha256;
  // Chosen by the client when it builds the update, the same for every retry of one push: the
  // server answers a second upload with the same key from the same site with the first one's id
  // instead of counting it again. Empty: none (the header then has no "idempotency_key").
  // 1..128 characters of A-Z a-z 0-9 . _ : -
  std::string idempotencyKey;
  // Set when the site clipped and noised the delta itself (local DP): header "dp":
  // {"mode": "local", "clip": C, "noise_multiplier": z}. The server accounts the update's ε with
  // this z; it cannot check the noise, only refuse updates whose declaration misses its policy.
  std::optional<DpParameters> dp;
};

struct ModelUpdate {
  UpdateHeader header;
  common::WeightSet weights;
};

// A delta update: trained − base, tensor by tensor. Throws Error("shape_mismatch") when
// the two models are not the same network.
ModelUpdate makeDeltaUpdate(const model::Model& trained, const model::Model& base, double samples,
                            std::map<std::string, double> metrics = {});

std::string encodeUpdate(const ModelUpdate& update);  // fills parameters, weightsBytes, sha
// Throws Error(ErrorCode::BadUpdate, "<source>: ...") on malformed input, ("non_finite") on NaN/Inf.
ModelUpdate decodeUpdate(std::string_view bytes, const std::string& source);

// The header and where the weights section sits, read from a file without loading the weights.
struct UpdateFileInfo {
  UpdateHeader header;
  uint64_t weightsOffset = 0;
  uint64_t weightsLength = 0;
};
UpdateFileInfo readUpdateFileInfo(const std::filesystem::path& path, const std::string& source);
// The same from the first bytes of an upload still arriving: std::nullopt while the header is
// not complete, Error("bad_update") as soon as the bytes seen are not a well-formed update
// prefix. weightsLength is what the header declares (nothing after the prefix is looked at).
std::optional<UpdateFileInfo> readUpdatePrefix(std::string_view bytes, const std::string& source);
// Empty when `key` is a valid idempotency key; otherwise what is wrong with it.
std::string idempotencyKeyProblem(std::string_view key);

}  // namespace tessera::federation
