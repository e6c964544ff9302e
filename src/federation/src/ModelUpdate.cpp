#include "tessera/federation/ModelUpdate.h"

#include <cmath>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "tessera/federation/UpdateError.h"
#include "tessera/nn/ModelError.h"

namespace tessera::federation {

namespace {

constexpr char kMagic[8] = {'T', 'S', 'U', 'P', 'D', 'A', 'T', 'E'};
constexpr uint32_t kVersion = 1;
constexpr uint64_t kMaxHeaderBytes = 1 << 20;

template <typename T>
void append(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof value);
}

[[noreturn]] void bad(const std::string& source, const std::string& problem) {
  throw UpdateError("bad_update", source + ": " + problem);
}

UpdateHeader headerFromJson(const nlohmann::json& j, const std::string& source) {
  // (value() would throw json::type_error, not UpdateError, for a "format" that is not a string.)
  if (!j.is_object() || !j.contains("format") || j.at("format") != "tessera-update") {
    bad(source, "header does not declare format 'tessera-update'");
  }
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
  return h;
}

nlohmann::json headerToJson(const UpdateHeader& h) {
  nlohmann::json metrics = nlohmann::json::object();
  for (const auto& [k, v] : h.metrics) metrics[k] = v;
  return {{"format", "tessera-update"}, {"task", h.task},          {"base_generation", h.baseGeneration},
          {"kind", toString(h.kind)},   {"samples", h.samples},    {"metrics", metrics},
          {"parameters", h.parameters}, {"weights_bytes", h.weightsBytes}, {"weights_sha256", h.weightsSha256}};
}

// Parses the framing shared by encodeUpdate and files; returns the header and the weights span.
std::pair<UpdateHeader, std::pair<uint64_t, uint64_t>> parseFraming(std::string_view prefix, uint64_t totalSize,
                                                                     const std::string& source,
                                                                     const std::function<std::string(uint64_t, uint64_t)>& readAt) {
  if (prefix.size() < 20 || std::memcmp(prefix.data(), kMagic, 8) != 0) bad(source, "not a Tessera update (missing 'TSUPDATE' signature)");
  uint32_t version;
  std::memcpy(&version, prefix.data() + 8, 4);
  if (version != kVersion) bad(source, "update format version " + std::to_string(version) + " is not supported");
  uint64_t headerLength;
  std::memcpy(&headerLength, prefix.data() + 12, 8);
  if (headerLength > kMaxHeaderBytes || 20 + headerLength + 8 > totalSize) bad(source, "truncated or implausible header length");
  const std::string headerText = readAt(20, headerLength);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(headerText);
  } catch (const nlohmann::json::exception& e) {
    bad(source, std::string("header is not valid JSON: ") + e.what());
  }
  UpdateHeader header = headerFromJson(j, source);
  const std::string lengthBytes = readAt(20 + headerLength, 8);
  uint64_t weightsLength;
  std::memcpy(&weightsLength, lengthBytes.data(), 8);
  const uint64_t weightsOffset = 28 + headerLength;
  if (weightsLength != totalSize - weightsOffset) {
    bad(source, "weights section is " + std::to_string(totalSize - weightsOffset) + " bytes, the header says " +
                    std::to_string(weightsLength));
  }
  if (header.weightsBytes != weightsLength) bad(source, "header field 'weights_bytes' does not match the weights section");
  return {header, {weightsOffset, weightsLength}};
}

}  // namespace

std::string toString(UpdateKind kind) { return kind == UpdateKind::Delta ? "delta" : "weights"; }

UpdateKind updateKindFromString(const std::string& text) {
  if (text == "delta") return UpdateKind::Delta;
  if (text == "weights") return UpdateKind::Weights;
  throw UpdateError("bad_update", "update kind '" + text + "' is neither 'delta' nor 'weights'");
}

ModelUpdate makeDeltaUpdate(const nn::Model& trained, const nn::Model& base, double samples,
                            std::map<std::string, double> metrics) {
  if (trained.weights.size() != base.weights.size()) {
    throw UpdateError("shape_mismatch", "trained model has " + std::to_string(trained.weights.size()) +
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
      throw UpdateError("shape_mismatch", "tensor '" + t.name + "' does not match base tensor '" + b.name + "'");
    }
    nn::WeightTensor d{t.name, t.shape, std::vector<float>(t.values.size())};
    for (size_t k = 0; k < d.values.size(); ++k) d.values[k] = t.values[k] - b.values[k];
    u.weights.push_back(std::move(d));
  }
  return u;
}

std::string encodeUpdate(const ModelUpdate& update) {
  const std::string weights = nn::encodeWeights(update.weights);
  UpdateHeader h = update.header;
  h.parameters = nn::parameterCount(update.weights);
  h.weightsBytes = weights.size();
  h.weightsSha256 = nn::sha256Hex(weights);
  const std::string headerText = headerToJson(h).dump();
  std::string out(kMagic, 8);
  append<uint32_t>(out, kVersion);
  append<uint64_t>(out, headerText.size());
  out += headerText;
  append<uint64_t>(out, weights.size());
  out += weights;
  return out;
}

ModelUpdate decodeUpdate(std::string_view bytes, const std::string& source) {
  auto readAt = [&](uint64_t offset, uint64_t n) {
    if (offset + n > bytes.size()) bad(source, "truncated");
    return std::string(bytes.substr(offset, n));
  };
  auto [header, span] = parseFraming(bytes.substr(0, std::min<size_t>(bytes.size(), 20)), bytes.size(), source, readAt);
  const std::string_view weights = bytes.substr(span.first, span.second);
  if (nn::sha256Hex(weights) != header.weightsSha256) bad(source, "weights SHA-256 does not match the header (corrupted in transit?)");
  ModelUpdate u;
  u.header = header;
  try {
    u.weights = nn::decodeWeights(weights, source);
  } catch (const nn::ModelError& e) {
    const std::string what = e.what();
    throw UpdateError(what.find("NaN or Inf") != std::string::npos ? "non_finite" : "bad_update", what);
  }
  if (nn::parameterCount(u.weights) != header.parameters) bad(source, "header field 'parameters' does not match the weights");
  return u;
}

UpdateFileInfo readUpdateFileInfo(const std::filesystem::path& path, const std::string& source) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UpdateError("io", source + ": cannot open " + path.string());
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) throw UpdateError("io", source + ": cannot stat " + path.string());
  auto readAt = [&](uint64_t offset, uint64_t n) {
    if (offset + n > size) bad(source, "truncated");
    std::string out(n, '\0');
    in.seekg(static_cast<std::streamoff>(offset));
    in.read(out.data(), static_cast<std::streamsize>(n));
    if (!in) bad(source, "truncated");
    return out;
  };
  const std::string prefix = readAt(0, std::min<uint64_t>(size, 20));
  auto [header, span] = parseFraming(prefix, size, source, readAt);
  return {header, span.first, span.second};
}

}  // namespace tessera::federation
