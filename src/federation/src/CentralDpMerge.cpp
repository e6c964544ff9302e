#include "tessera/federation/CentralDpMerge.h"

#include <algorithm>
#include <string>

#include "tessera/common/Error.h"

namespace tessera::federation {

namespace {

common::WeightSet readAll(const common::WeightsLocation& location, const std::string& source) {
  common::WeightRecordReader reader(location, source);
  common::WeightSet set;
  while (reader.next()) {
    const auto& info = reader.tensor();
    common::WeightTensor t{info.name, info.shape, std::vector<float>(static_cast<size_t>(info.elements))};
    reader.read(t.values.data(), info.elements, true);
    set.push_back(std::move(t));
  }
  return set;
}

void expectSameLayout(const common::WeightSet& a, const common::WeightSet& b, const std::string& source) {
  if (a.size() != b.size()) {
    throw Error(ErrorCode::ShapeMismatch, source + ": holds " + std::to_string(b.size()) + " tensors, the model " +
                                              std::to_string(a.size()));
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].shape != b[i].shape) {
      throw Error(ErrorCode::ShapeMismatch, source + ": tensor '" + b[i].name + "' does not match the model's '" + a[i].name + "'");
    }
  }
}

// Coordinate-wise median of equally long vectors (the mean of the two middle values for an even
// count), as the median strategy merges.
std::vector<float> coordinateMedian(const std::vector<std::vector<float>>& rows) {
  std::vector<float> out(rows.empty() ? 0 : rows.front().size());
  std::vector<float> column(rows.size());
  for (size_t j = 0; j < out.size(); ++j) {
    for (size_t r = 0; r < rows.size(); ++r) column[r] = rows[r][j];
    std::sort(column.begin(), column.end());
    const size_t n = column.size();
    out[j] = n % 2 ? column[n / 2] : static_cast<float>((double(column[n / 2 - 1]) + column[n / 2]) / 2);
  }
  return out;
}

}  // namespace

CentralDpMergeOutput mergeWithCentralDp(const MergeInput& input, const DpParameters& dp, NoiseSource& noise,
                                        common::WeightRecordWriter& out) {
  dp.validate();
  if (input.updates.empty()) throw std::invalid_argument("mergeWithCentralDp: no updates to merge");
  const Strategy strategy = input.policy.strategy;
  if (strategy != Strategy::FedAvg && strategy != Strategy::FedBN) {
    throw Error(ErrorCode::BadRequest, "central DP merges with fedavg or fedbn only, not " + toString(strategy));
  }
  const common::WeightSet current = readAll(input.current, "generation " + std::to_string(input.currentGeneration));
  common::WeightSet mean = current;
  for (auto& t : mean) std::fill(t.values.begin(), t.values.end(), 0.0f);
  std::vector<double> sum(static_cast<size_t>(common::parameterCount(current)), 0.0);

  // Without noise the clip is a norm bound on each site's influence, not a privacy release, so
  // the running statistics need not stay frozen at the current generation's (weights trained
  // away from them collapse: validation Dice 0.92 -> 0.0 after one round). They lie outside the
  // clipped norm, so they take the sites' median delta, which a minority cannot drag away.
  const bool mergeStatistics = dp.noiseMultiplier == 0;
  std::vector<std::vector<float>> statisticDeltas;

  CentralDpMergeOutput result;
  const double m = static_cast<double>(input.updates.size());
  for (const auto& u : input.updates) {
    const std::string name = "update " + std::to_string(u.id);
    common::WeightSet delta = readAll(u.weights, name);
    expectSameLayout(current, delta, name);
    if (u.kind == UpdateKind::Weights) {
      if (!input.generationWeights) throw std::invalid_argument("mergeWithCentralDp: no access to earlier generations");
      const auto base = readAll(input.generationWeights(u.baseGeneration), "generation " + std::to_string(u.baseGeneration));
      expectSameLayout(current, base, "generation " + std::to_string(u.baseGeneration));
      for (size_t i = 0; i < delta.size(); ++i)
        for (size_t j = 0; j < delta[i].values.size(); ++j) delta[i].values[j] -= base[i].values[j];
    }
    if (mergeStatistics) {
      statisticDeltas.emplace_back();
      for (const auto& t : delta)
        if (isRunningStatistic(t.name)) statisticDeltas.back().insert(statisticDeltas.back().end(), t.values.begin(), t.values.end());
    }
    result.normsBeforeClipping.push_back(clipToNorm(delta, dp.clipNorm));
    size_t k = 0;
    for (const auto& t : delta)
      for (float v : t.values) sum[k++] += v;
    result.merge.contributions.push_back(1.0 / m);
  }
  size_t k = 0;
  for (auto& t : mean)
    for (float& v : t.values) v = static_cast<float>(sum[k++] / m);
  addCentralNoise(mean, dp, static_cast<int64_t>(input.updates.size()), noise);

  const std::vector<float> statisticMedian = coordinateMedian(statisticDeltas);
  size_t statistic = 0;
  for (size_t i = 0; i < current.size(); ++i) {
    const auto& c = current[i];
    const bool localNorm = strategy == Strategy::FedBN && isNormalizationTensor(c.name);
    std::vector<float> merged(c.values);
    if (isRunningStatistic(c.name)) {
      if (mergeStatistics && !localNorm)
        for (size_t j = 0; j < merged.size(); ++j) merged[j] = static_cast<float>(double(c.values[j]) + statisticMedian[statistic + j]);
      statistic += merged.size();
    } else if (!localNorm) {
      for (size_t j = 0; j < merged.size(); ++j) merged[j] = static_cast<float>(double(c.values[j]) + mean[i].values[j]);
    }
    out.beginTensor(c.name, c.shape);
    out.write(merged.data(), static_cast<int64_t>(merged.size()));
    result.merge.parameters += static_cast<int64_t>(merged.size());
  }
  result.merge.weightsSha256 = out.finishHash();
  result.merge.weightsBytes = out.bytesWritten();
  return result;
}

}  // namespace tessera::federation
