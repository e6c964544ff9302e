#include "tessera/model/NetworkSpec.h"

#include <nlohmann/json.hpp>

#include "tessera/common/Error.h"

namespace tessera::model {

std::string toString(Normalization norm) {
  switch (norm) {
    case Normalization::Batch: return "batch";
    case Normalization::Instance: return "instance";
    case Normalization::None: return "none";
  }
  return "none";
}

static Normalization parseNormalization(const std::string& text) {
  if (text == "batch") return Normalization::Batch;
  if (text == "instance") return Normalization::Instance;
  if (text == "none") return Normalization::None;
  throw Error(ErrorCode::BadModel, "spec field 'norm': '" + text + "' is not one of batch, instance, none");
}

void NetworkSpec::validate() const {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw Error(ErrorCode::BadModel, "spec field " + what);
  };
  require(dims == 2 || dims == 3, "'dims' must be 2 or 3, got " + std::to_string(dims));
  require(axis >= 0 && axis <= 2, "'axis' must be 0, 1 or 2, got " + std::to_string(axis));
  require(inChannels >= 1 && inChannels <= 16,
          "'in_channels' must be 1..16, got " + std::to_string(inChannels));
  require(guidanceChannels == 0 || guidanceChannels == 2,
          "'guidance_channels' must be 0 or 2, got " + std::to_string(guidanceChannels));
  require(classes >= 2 && classes <= 256, "'classes' must be 2..256, got " + std::to_string(classes));
  require(baseFeatures >= 1 && baseFeatures <= 256,
          "'base_features' must be 1..256, got " + std::to_string(baseFeatures));
  require(depth >= 1 && depth <= 7, "'depth' must be 1..7, got " + std::to_string(depth));
  if (dims == 3) {
    for (int p : patch) {
      require(p >= sizeMultiple() && p <= 512 && p % sizeMultiple() == 0,
              "'patch' sizes must be multiples of " + std::to_string(sizeMultiple()) +
                  " between " + std::to_string(sizeMultiple()) + " and 512, got " +
                  std::to_string(p));
    }
  }
}

nlohmann::json toJson(const NetworkSpec& spec) {
  nlohmann::json j{{"architecture", "unet"},
                   {"dims", spec.dims},
                   {"in_channels", spec.inChannels},
                   {"classes", spec.classes},
                   {"base_features", spec.baseFeatures},
                   {"depth", spec.depth},
                   {"norm", toString(spec.norm)}};
  if (spec.dims == 2) j["axis"] = spec.axis;
  // Written only when used, so the header (and SHA-256 of a saved file) of every model made
  // before guidance existed stays byte-identical.
  if (spec.guidanceChannels > 0) j["guidance_channels"] = spec.guidanceChannels;
  if (spec.dims == 3) j["patch"] = spec.patch;
  return j;
}

NetworkSpec networkSpecFromJson(const nlohmann::json& j) {
  if (!j.is_object()) throw Error(ErrorCode::BadModel, "spec: expected a JSON object");
  NetworkSpec spec;
  try {
    if (j.contains("architecture") && j.at("architecture").get<std::string>() != "unet") {
      throw Error(ErrorCode::BadModel, "spec field 'architecture': only 'unet' is supported, got '" +
                       j.at("architecture").get<std::string>() + "'");
    }
    spec.dims = j.value("dims", spec.dims);
    spec.axis = j.value("axis", spec.axis);
    spec.inChannels = j.value("in_channels", spec.inChannels);
    spec.guidanceChannels = j.value("guidance_channels", spec.guidanceChannels);
    spec.classes = j.value("classes", spec.classes);
    spec.baseFeatures = j.value("base_features", spec.baseFeatures);
    spec.depth = j.value("depth", spec.depth);
    if (j.contains("norm")) spec.norm = parseNormalization(j.at("norm").get<std::string>());
    if (j.contains("patch")) spec.patch = j.at("patch").get<std::array<int, 3>>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::BadModel, std::string("spec: wrong type of field: ") + e.what());
  }
  for (const auto& [key, value] : j.items()) {
    static const char* known[] = {"architecture", "dims",  "axis", "in_channels", "guidance_channels",
                                  "classes", "base_features", "depth", "norm", "patch"};
    if (std::find(std::begin(known), std::end(known), key) == std::end(known)) {
      throw Error(ErrorCode::BadModel, "spec: unknown field '" + key + "'");
    }
  }
  spec.validate();
  return spec;
}

}  // namespace tessera::model
