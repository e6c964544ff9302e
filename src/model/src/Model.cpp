#include "tessera/model/Model.h"

#include <cmath>
#include <random>

#include <nlohmann/json.hpp>

#include "tessera/common/AtomicFile.h"
#include "tessera/common/Container.h"
#include "tessera/common/Error.h"
#include "tessera/model/WeightLayout.h"

namespace tessera::model {

namespace {
constexpr auto kKind = common::ContainerKind::Model;
constexpr const char* kFormat = "tessera-model";
}  // namespace

void checkWeightLayout(const NetworkSpec& spec, const common::WeightSet& weights, const std::string& source) {
  const auto expected = weightLayout(spec);
  if (expected.size() != weights.size()) {
    throw Error(ErrorCode::ShapeMismatch, source + ": weights hold " + std::to_string(weights.size()) +
                                              " tensors, the spec's network has " + std::to_string(expected.size()));
  }
  for (size_t i = 0; i < expected.size(); ++i) {
    if (expected[i].name != weights[i].name) {
      throw Error(ErrorCode::ShapeMismatch, source + ": weight tensor " + std::to_string(i) + " is '" + weights[i].name +
                                                "', the spec's network expects '" + expected[i].name + "'");
    }
    if (expected[i].shape != weights[i].shape) {
      throw Error(ErrorCode::ShapeMismatch,
                  source + ": weight tensor '" + weights[i].name + "' has a shape that does not match the spec's network");
    }
  }
}

std::string Model::weightsSha256() const { return common::sha256Hex(common::encodeWeights(weights)); }

Model initialModel(const NetworkSpec& spec, const Preprocessing& prep, const TaskInfo& task, uint64_t seed) {
  Model model;
  model.spec = spec;
  model.preprocessing = prep;
  model.task = task;
  std::mt19937_64 rng(seed);
  for (const auto& slot : weightLayout(spec)) {
    common::WeightTensor t{slot.name, slot.shape, {}};
    t.values.assign(static_cast<size_t>(t.elementCount()), 0.0f);
    switch (slot.role) {
      case TensorRole::ConvWeight:
      case TensorRole::ConvBias: {
        // kaiming_uniform(a = √5) and the bias rule of torch.nn.Conv: both ±1/√fan-in.
        const float bound = 1.0f / std::sqrt(static_cast<float>(slot.fanIn));
        std::uniform_real_distribution<float> uniform(-bound, bound);
        for (float& v : t.values) v = uniform(rng);
        break;
      }
      case TensorRole::NormWeight:
      case TensorRole::RunningVar:
        std::fill(t.values.begin(), t.values.end(), 1.0f);
        break;
      case TensorRole::NormBias:
      case TensorRole::RunningMean:
      case TensorRole::BatchCount:
        break;
    }
    model.weights.push_back(std::move(t));
  }
  return model;
}

std::string encodeModelPrefix(const Model& model, int64_t parameters, uint64_t weightsBytes,
                              const std::string& weightsSha256) {
  nlohmann::json header{{"format", kFormat},
                        {"spec", toJson(model.spec)},
                        {"preprocessing", toJson(model.preprocessing)},
                        {"task", toJson(model.task)},
                        {"generation", model.generation},
                        {"parent_generation", nullptr},
                        {"parameters", parameters},
                        {"weights_bytes", weightsBytes},
                        {"weights_sha256", weightsSha256}};
  if (model.parentGeneration) header["parent_generation"] = *model.parentGeneration;
  return common::encodeContainerPrefix(kKind, header, weightsBytes);
}

std::string encodeModel(const Model& model) {
  const std::string weights = common::encodeWeights(model.weights);
  return encodeModelPrefix(model, common::parameterCount(model.weights), weights.size(), common::sha256Hex(weights)) +
         weights;
}

Model decodeModel(std::string_view bytes, const std::string& source) {
  const auto layout = common::readContainerLayout(bytes, kKind, source);
  const auto header = common::parseContainerHeader(layout.headerText, kKind, kFormat, source);
  const std::string_view weightsBytes = bytes.substr(layout.weightsOffset, layout.weightsLength);
  auto bad = [&](const std::string& problem) { return Error(ErrorCode::BadModel, source + ": " + problem); };
  Model model;
  try {
    const std::string expectedSha = header.at("weights_sha256").get<std::string>();
    if (common::sha256Hex(weightsBytes) != expectedSha) {
      throw bad("weights SHA-256 does not match the header (file corrupted or altered)");
    }
    model.spec = networkSpecFromJson(header.at("spec"));
    model.preprocessing = preprocessingFromJson(header.at("preprocessing"));
    model.task = taskInfoFromJson(header.at("task"));
    model.generation = header.at("generation").get<int64_t>();
    if (header.contains("parent_generation") && !header.at("parent_generation").is_null()) {
      model.parentGeneration = header.at("parent_generation").get<int64_t>();
    }
  } catch (const nlohmann::json::exception& e) {
    throw bad(std::string("header field missing or of the wrong type: ") + e.what());
  } catch (const Error& e) {
    if (std::string_view(e.what()).starts_with(source + ":")) throw;
    throw Error(e.code(), source + ": " + e.what());
  }
  model.weights = common::decodeWeights(weightsBytes, source, ErrorCode::BadModel);
  checkWeightLayout(model.spec, model.weights, source);
  return model;
}

void saveModel(const Model& model, const std::filesystem::path& path) {
  common::writeFileAtomically(path, encodeModel(model));
}

Model loadModel(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw Error(ErrorCode::NotFound, path.string() + ": no such file");
  if (std::filesystem::is_directory(path, ec)) {
    throw Error(ErrorCode::BadRequest, path.string() + ": is a directory, not a model file");
  }
  return decodeModel(common::readFile(path), path.string());
}

}  // namespace tessera::model
