#include "tessera/model/Preprocessing.h"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "tessera/image/Resample.h"
#include "tessera/common/Error.h"

namespace tessera::model {

nlohmann::json toJson(const Preprocessing& prep) {
  return {{"target_spacing", prep.targetSpacing},
          {"normalization", "zscore"},
          {"clip_percentiles", {prep.clipLowPercentile, prep.clipHighPercentile}}};
}

Preprocessing preprocessingFromJson(const nlohmann::json& j) {
  if (!j.is_object()) throw Error(ErrorCode::BadModel, "preprocessing: expected a JSON object");
  Preprocessing prep;
  try {
    if (j.contains("target_spacing")) prep.targetSpacing = j.at("target_spacing").get<std::array<double, 3>>();
    if (j.contains("normalization") && j.at("normalization").get<std::string>() != "zscore") {
      throw Error(ErrorCode::BadModel, "preprocessing field 'normalization': only 'zscore' is supported");
    }
    if (j.contains("clip_percentiles")) {
      auto p = j.at("clip_percentiles").get<std::array<double, 2>>();
      prep.clipLowPercentile = p[0];
      prep.clipHighPercentile = p[1];
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::BadModel, std::string("preprocessing: wrong type of field: ") + e.what());
  }
  for (double s : prep.targetSpacing) {
    if (!(s >= 0.0 && s <= 100.0)) throw Error(ErrorCode::BadModel, "preprocessing field 'target_spacing': values must be 0..100 mm");
  }
  if (!(prep.clipLowPercentile >= 0 && prep.clipLowPercentile < prep.clipHighPercentile &&
        prep.clipHighPercentile <= 100)) {
    throw Error(ErrorCode::BadModel, "preprocessing field 'clip_percentiles': need 0 <= low < high <= 100");
  }
  return prep;
}

static bool needsResampling(const image::Geometry& g, const Preprocessing& prep) {
  for (int a = 0; a < 3; ++a) {
    if (prep.targetSpacing[a] > 0 && std::abs(prep.targetSpacing[a] - g.spacing[a]) > 1e-6) return true;
  }
  return false;
}

static float percentile(std::vector<float> values, double p) {
  if (values.empty()) return 0.0f;
  auto k = static_cast<size_t>(std::clamp(p / 100.0 * static_cast<double>(values.size() - 1), 0.0,
                                          static_cast<double>(values.size() - 1)));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(k), values.end());
  return values[k];
}

image::Volume preprocessImage(const image::Volume& input, const Preprocessing& prep) {
  image::Volume out = needsResampling(input.geometry, prep)
                          ? image::resample(input, image::withSpacing(input.geometry, prep.targetSpacing),
                                            image::Interpolation::Linear)
                          : input;
  // Percentiles from a strided sample: exact enough and keeps large CTs cheap.
  std::vector<float> sample;
  const size_t stride = std::max<size_t>(1, out.voxels.size() / 1000000);
  sample.reserve(out.voxels.size() / stride + 1);
  for (size_t i = 0; i < out.voxels.size(); i += stride) sample.push_back(out.voxels[i]);
  const float lo = percentile(sample, prep.clipLowPercentile);
  const float hi = percentile(sample, prep.clipHighPercentile);
  double sum = 0.0, sumSq = 0.0;
  for (float& v : out.voxels) {
    v = std::clamp(v, lo, hi);
    sum += v;
    sumSq += static_cast<double>(v) * v;
  }
  const double n = static_cast<double>(std::max<size_t>(1, out.voxels.size()));
  const double mean = sum / n;
  const double sd = std::sqrt(std::max(0.0, sumSq / n - mean * mean));
  const double scale = sd > 1e-8 ? 1.0 / sd : 1.0;
  for (float& v : out.voxels) v = static_cast<float>((v - mean) * scale);
  return out;
}

image::Volume preprocessLabels(const image::Volume& labels, const Preprocessing& prep) {
  if (!needsResampling(labels.geometry, prep)) return labels;
  return image::resample(labels, image::withSpacing(labels.geometry, prep.targetSpacing),
                         image::Interpolation::Nearest);
}

}  // namespace tessera::model
