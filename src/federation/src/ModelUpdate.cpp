#include "tessera/federation/ModelUpdate.h"

#include <cmath>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "tessera/common/Container.h"
#include "tessera/common/Error.h"

namespace tessera::federation {

namespace {

constexpr auto kKind = common::ContainerKind::Update;
constexpr const char* kFormat = "tessera-update";

[[noreturn]] void bad(const std::string& source, const std::string& problem) {
  throw Error(ErrorCode::BadUpdate, source + ": " + problem);
}

UpdateHeader headerFromJson(const nlohmann::json& j, const std::string& source) {
  UpdateHeader h;
  try {
    h.task = j.at("task").get<std::string>();
    h.baseGeneration = j.at("base_generation").get<int64_t>();
    h.kind = updateKindFromString(j.at("kind").get<std::string>());
    h.samples = j.at("samples").get<double>();
    if (j.contains("metrics")) {
      for (const auto& [k, v] : j.at("metrics").items()) h.metrics[k] = v.get<double>();
    }
    h.parameters = j.at("parameters").get<int64_t>();
    h.weightsBytes = j.at("weights_bytes").get<uint64_t>();
    h.weightsSha256 = j.at("weights_sha256").get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    bad(source, std::string("header field missing or of the wrong type: ") + e.what());
  }
  if (h.task.empty()) bad(source, "header field 'task' is empty");
  if (h.baseGeneration < 0) bad(source, "header field 'base_generation' is negative");
  if (!std::isfinite(h.samples) || h.samples <= 0) bad(source, "header field 'samples' must be a positive number");
  if (j.contains("idempotency_key")) {
    if (!j["idempotency_key"].is_string()) bad(source, "header field 'idempotency_key' is not a string");
    h.idempotencyKey = j["idempotency_key"].get<std::string>();
    if (const std::string problem = idempotencyKeyProblem(h.idempotencyKey); !problem.empty()) {
      bad(source, "header field 'idempotency_key' " + problem);
    }
  }
  if (j.contains("dp")) {
    const auto& dp = j["dp"];
    if (!dp.is_object() || dp.value("mode", "") != "local" || !dp.contains("clip") || !dp["clip"].is_number() ||
        !dp.contains("noise_multiplier") || !dp["noise_multiplier"].is_number()) {
      bad(source, "header field 'dp' must be {\"mode\": \"local\", \"clip\": C, \"noise_multiplier\": z}");
    }
    h.dp = DpParameters{dp["clip"].get<double>(), dp["noise_multiplier"].get<double>()};
    try {
      h.dp->validate();
    } catch (const Error& e) {
      bad(source, std::string("header field 'dp': ") + e.what());
    }
  }
  return h;
}

nlohmann::json headerToJson(const UpdateHeader& h) {
  nlohmann::json metrics = nlohmann::json::object();
  for (const auto& [k, v] : h.metrics) metrics[k] = v;
  nlohmann::json j = {{"format", kFormat}, {"task", h.task},          {"base_generation", h.baseGeneration},
          {"kind", toString(h.kind)},   {"samples", h.samples},    {"metrics", metrics},
          {"parameters", h.parameters}, {"weights_bytes", h.weightsBytes}, {"weights_sha256", h.weightsSha256}};
  if (!h.idempotencyKey.empty()) j["idempotency_key"] = h.idempotencyKey;
  if (h.dp) j["dp"] = {{"mode", "local"}, {"clip", h.dp->clipNorm}, {"noise_multiplier", h.dp->noiseMultiplier}};
  return j;
}

// The header of a container whose layout has been read, checked against the weights section.
UpdateHeader checkedHeader(const common::ContainerLayout& layout, const std::string& source) {
  UpdateHeader header = headerFromJson(common::parseContainerHeader(layout.headerText, kKind, kFormat, source), source);
  if (header.weightsBytes != layout.weightsLength) bad(source, "header field 'weights_bytes' does not match the weights section");
  return header;
}

}  // namespace

std::string toString(UpdateKind kind) { return kind == UpdateKind::Delta ? "delta" : "weights"; }

UpdateKind updateKindFromString(const std::string& text) {
  if (text == "delta") return UpdateKind::Delta;
  if (text == "weights") return UpdateKind::Weights;
  throw Error(ErrorCode::BadUpdate, "update kind '" + text + "' is neither 'delta' nor 'weights'");
}

ModelUpdate makeDeltaUpdate(const model::Model& trained, const model::Model& base, double samples,
                            std::map<std::string, double> metrics) {
  if (trained.weights.size() != base.weights.size()) {
    throw Error(ErrorCode::ShapeMismatch, "trained model has " + std::to_string(trained.weights.size()) +
                                            " tensors, its base has " + std::to_string(base.weights.size()));
  }
  ModelUpdate u;
  u.header.task = base.task.name;
  u.header.baseGeneration = base.generation;
  u.header.kind = UpdateKind::Delta;
  u.header.samples = samples;
  u.header.metrics = std::move(metrics);
  u.weights.reserve(base.weights.size());
  for (size_t i = 0; i < base.weights.size(); ++i) {
    const auto& t = trained.weights[i];
    const auto& b = base.weights[i];
    if (t.name != b.name || t.shape != b.shape) {
      throw Error(ErrorCode::ShapeMismatch, "tensor '" + t.name + "' does not match base tensor '" + b.name + "'");
    }
    common::WeightTensor d{t.name, t.shape, std::vector<float>(t.values.size())};
    for (size_t k = 0; k < d.values.size(); ++k) d.values[k] = t.values[k] - b.values[k];
    u.weights.push_back(std::move(d));
  }
  return u;
}

std::string encodeUpdate(const ModelUpdate& update) {
  const std::string weights = common::encodeWeights(update.weights);
  UpdateHeader h = update.header;
  h.parameters = common::parameterCount(update.weights);
  h.weightsBytes = weights.size();
  h.weightsSha256 = common::sha256Hex(weights);
  return common::encodeContainerPrefix(kKind, headerToJson(h), weights.size()) + weights;
}

ModelUpdate decodeUpdate(std::string_view bytes, const std::string& source) {
  const auto layout = common::readContainerLayout(bytes, kKind, source);
  ModelUpdate u;
  u.header = checkedHeader(layout, source);
  const std::string_view weights = bytes.substr(layout.weightsOffset, layout.weightsLength);
  if (common::sha256Hex(weights) != u.header.weightsSha256) bad(source, "weights SHA-256 does not match the header (corrupted in transit?)");
  u.weights = common::decodeWeights(weights, source, ErrorCode::BadUpdate);
  if (common::parameterCount(u.weights) != u.header.parameters) bad(source, "header field 'parameters' does not match the weights");
  return u;
}

UpdateFileInfo readUpdateFileInfo(const std::filesystem::path& path, const std::string& source) {
  const auto layout = common::readContainerFileLayout(path, kKind, source);
  return {checkedHeader(layout, source), layout.weightsOffset, layout.weightsLength};
}

std::optional<UpdateFileInfo> readUpdatePrefix(std::string_view bytes, const std::string& source) {
  const auto layout = common::readContainerPrefix(bytes, kKind, source);
  if (!layout) return std::nullopt;
  return UpdateFileInfo{checkedHeader(*layout, source), layout->weightsOffset, layout->weightsLength};
}

std::string idempotencyKeyProblem(std::string_view key) {
  if (key.empty()) return "is empty";
  if (key.size() > 128) return "is " + std::to_string(key.size()) + " characters long (at most 128)";
  for (const char c : key) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                    c == ':' || c == '-';
    if (!ok) return "holds a character other than A-Z a-z 0-9 . _ : -";
  }
  return {};
}

}  // namespace tessera::federation
