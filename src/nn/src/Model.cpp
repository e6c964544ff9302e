#include "tessera/nn/Model.h"


#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "ByteIO.h"
#include "tessera/common/AtomicFile.h"
#include "NetworkFactory.h"

namespace tessera::nn {

namespace {
constexpr char kMagic[8] = {'T', 'S', 'M', 'O', 'D', 'E', 'L', '\0'};
constexpr uint32_t kFormatVersion = 1;
constexpr uint64_t kMaxHeaderBytes = 16u << 20;

void checkLayout(const NetworkSpec& spec, const WeightSet& weights, const std::string& source) {
  const auto expected = detail::weightLayout(spec);
  if (expected.size() != weights.size()) {
    throw ModelError(source + ": weights hold " + std::to_string(weights.size()) +
                     " tensors, the spec's network has " + std::to_string(expected.size()));
  }
  for (size_t i = 0; i < expected.size(); ++i) {
    if (expected[i].name != weights[i].name) {
      throw ModelError(source + ": weight tensor " + std::to_string(i) + " is '" + weights[i].name +
                       "', the spec's network expects '" + expected[i].name + "'");
    }
    if (expected[i].shape != weights[i].shape) {
      throw ModelError(source + ": weight tensor '" + weights[i].name +
                       "' has a shape that does not match the spec's network");
    }
  }
}
}  // namespace

std::string Model::weightsSha256() const { return sha256Hex(encodeWeights(weights)); }

Model initialModel(const NetworkSpec& spec, const Preprocessing& prep, const TaskInfo& task,
                   uint64_t seed) {
  spec.validate();
  Model model;
  model.spec = spec;
  model.preprocessing = prep;
  model.task = task;
  model.weights = detail::initialWeights(spec, seed);
  return model;
}

std::string encodeModelPrefix(const Model& model, int64_t parameters, uint64_t weightsBytes,
                              const std::string& weightsSha256) {
  nlohmann::json header{{"format", "tessera-model"},
                        {"spec", toJson(model.spec)},
                        {"preprocessing", toJson(model.preprocessing)},
                        {"task", toJson(model.task)},
                        {"generation", model.generation},
                        {"parent_generation", nullptr},
                        {"parameters", parameters},
                        {"weights_bytes", weightsBytes},
                        {"weights_sha256", weightsSha256}};
  if (model.parentGeneration) header["parent_generation"] = *model.parentGeneration;
  const std::string headerText = header.dump();
  detail::ByteWriter w;
  w.putBytes(std::string_view(kMagic, sizeof kMagic));
  w.put<uint32_t>(kFormatVersion);
  w.put<uint64_t>(headerText.size());
  w.putBytes(headerText);
  w.put<uint64_t>(weightsBytes);
  return std::move(w.str());
}

std::string encodeModel(const Model& model) {
  const std::string weights = encodeWeights(model.weights);
  return encodeModelPrefix(model, parameterCount(model.weights), weights.size(), sha256Hex(weights)) + weights;
}

Model decodeModel(std::string_view bytes, const std::string& source) {
  detail::ByteReader r(bytes, source);
  if (bytes.size() < sizeof kMagic || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    r.fail("not a Tessera model file (missing 'TSMODEL' signature)");
  }
  r.getBytes(sizeof kMagic, "signature");
  const auto version = r.get<uint32_t>("format version");
  if (version != kFormatVersion) {
    r.fail("model format version " + std::to_string(version) + " is not supported (this build reads " +
           std::to_string(kFormatVersion) + ")");
  }
  const auto headerLength = r.get<uint64_t>("header length");
  if (headerLength > kMaxHeaderBytes) r.fail("implausible header length " + std::to_string(headerLength));
  const auto headerText = r.getBytes(headerLength, "header");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(headerText);
  } catch (const nlohmann::json::exception& e) {
    r.fail(std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object() || header.value("format", "") != "tessera-model") {
    r.fail("header does not declare format 'tessera-model'");
  }
  const auto weightsLength = r.get<uint64_t>("weights length");
  const auto weightsBytes = r.getBytes(weightsLength, "weights");
  if (r.remaining() != 0) r.fail(std::to_string(r.remaining()) + " unexpected bytes after the weights");

  Model model;
  try {
    const std::string expectedSha = header.at("weights_sha256").get<std::string>();
    if (sha256Hex(weightsBytes) != expectedSha) {
      r.fail("weights SHA-256 does not match the header (file corrupted or altered)");
    }
    model.spec = networkSpecFromJson(header.at("spec"));
    model.preprocessing = preprocessingFromJson(header.at("preprocessing"));
    model.task = taskInfoFromJson(header.at("task"));
    model.generation = header.at("generation").get<int64_t>();
    if (header.contains("parent_generation") && !header.at("parent_generation").is_null()) {
      model.parentGeneration = header.at("parent_generation").get<int64_t>();
    }
  } catch (const nlohmann::json::exception& e) {
    r.fail(std::string("header field missing or of the wrong type: ") + e.what());
  } catch (const ModelError& e) {
    if (std::string_view(e.what()).starts_with(source + ":")) throw;
    r.fail(e.what());
  }
  model.weights = decodeWeights(weightsBytes, source);
  checkLayout(model.spec, model.weights, source);
  return model;
}

void saveModel(const Model& model, const std::filesystem::path& path) {
  try {
    common::writeFileAtomically(path, encodeModel(model));
  } catch (const common::FileError& e) {
    throw ModelError(e.what());
  }
}

Model loadModel(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw ModelError(path.string() + ": no such file");
  if (std::filesystem::is_directory(path, ec)) throw ModelError(path.string() + ": is a directory, not a model file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ModelError(path.string() + ": cannot open: " + std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return decodeModel(buffer.str(), path.string());
}

}  // namespace tessera::nn
